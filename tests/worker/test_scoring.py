"""Best-of-N on the worker: N candidates in one batch, scored by a tiny random CLIP loaded like a hub id."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import aiohttp
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_worker_settings
from worker.engine import Engine
from worker.errors import ModelUnavailable
from worker.protocol import GenerationRequest, GenerationResponse
from worker.scoring import check_scorer
from worker.tiny import save_tiny_clip

PROMPT = "a red fox in the snow, watercolour"


def independent_scores(folder: Path, images: list[Image.Image], prompt: str) -> list[float]:
    """CLIP score computed here, apart from the worker's code: projected features, cosine, times the logit scale."""
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    tokens = processor(text=[prompt], return_tensors="pt", padding=True, truncation=True)
    with torch.inference_mode():
        image = model.get_image_features(pixel_values=pixels).pooler_output
        text = model.get_text_features(**tokens).pooler_output
        scale = model.logit_scale.exp()
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return [float(v) for v in (image @ text[0]) * scale]


def decoded(response: GenerationResponse) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(item.b64_json or ""))).convert("RGB") for item in response.data]


def test_the_ranking_is_the_clip_score_of_each_candidate(tmp_path: Path, worker_cache: Path) -> None:
    folder = save_tiny_clip(tmp_path / "clip", seed=3)  # a folder, loaded like a hub id: from_pretrained
    engine = Engine(tiny_worker_settings(worker_cache, scorer=str(folder)))
    response = engine.render(engine.plan(GenerationRequest(prompt=PROMPT, seed=40, best_of=4)))
    expected = independent_scores(folder, decoded(response), PROMPT)
    scores = [item.score for item in response.data]
    assert [item.seed for item in response.data] == [40, 41, 42, 43]  # one batch of four seeds
    assert scores == pytest.approx(expected, abs=1e-4)
    assert len({round(s, 4) for s in expected}) == 4  # the candidates really differ in score
    assert response.chosen == max(range(4), key=expected.__getitem__)
    assert sorted(range(4), key=lambda i: -scores[i]) == sorted(range(4), key=lambda i: -expected[i])


def test_an_ordinary_request_has_no_scores(engine: Engine) -> None:
    response = engine.render(engine.plan(GenerationRequest(prompt=PROMPT, seed=1, n=2)))
    assert [item.score for item in response.data] == [None, None] and response.chosen is None


async def test_scores_and_the_chosen_index_are_in_the_api_response(worker_url: str, worker_cache: Path) -> None:
    url = worker_url + "/v1/images/generations"
    async with aiohttp.ClientSession() as session, session.post(url, json={"prompt": PROMPT, "best_of": 3}) as resp:
        body = await resp.json()
    assert resp.status == 200, body
    scores = [item["score"] for item in body["data"]]
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert body["chosen"] == scores.index(max(scores))
    images = decoded(GenerationResponse.model_validate(body))
    tiny = worker_cache / "tiny-clip-scorer"  # where scorer = "tiny" was built, on the render thread
    assert scores == pytest.approx(independent_scores(tiny, images, body["data"][0]["revised_prompt"]), abs=1e-4)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"best_of": 5}, "at most 4 candidates"),  # the worker's max_best_of
        ({"best_of": 9}, "less than or equal to 8"),  # the protocol's hard bound
        ({"best_of": 0}, "greater than or equal to 1"),
        ({"best_of": "lots"}, "valid integer"),
        ({"best_of": 2, "n": 2}, "best_of picks one picture: leave n at 1"),
    ],
)
async def test_best_of_out_of_bounds_is_a_400_naming_the_limit(worker_url: str, body: dict, words: str) -> None:
    url = worker_url + "/v1/images/generations"
    async with aiohttp.ClientSession() as session, session.post(url, json={"prompt": "x", **body}) as resp:
        answer = await resp.json()
    assert resp.status == 400 and answer["error"]["type"] == "invalid_request_error"
    assert words in answer["error"]["message"]


async def test_edits_refuse_best_of(worker_url: str) -> None:
    upload = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(upload, format="PNG")
    form = aiohttp.FormData()
    form.add_field("image", upload.getvalue(), filename="x.png", content_type="image/png")
    form.add_field("prompt", "a castle")
    form.add_field("best_of", "2")
    async with aiohttp.ClientSession() as session, session.post(worker_url + "/v1/images/edits", data=form) as resp:
        answer = await resp.json()
    assert resp.status == 400 and answer["error"]["param"] == "best_of"


def test_a_scorer_that_cannot_load_is_refused_at_start(tmp_path: Path, worker_cache: Path) -> None:
    (tmp_path / "blip").mkdir()
    (tmp_path / "blip" / "config.json").write_text(json.dumps({"model_type": "blip"}))
    (tmp_path / "empty").mkdir()
    for source, words in (
        (str(tmp_path / "blip"), "holds a 'blip' model; best-of needs a CLIP model"),
        (str(tmp_path / "empty"), "no readable config.json"),
        ("not a hub id", "neither a folder nor a hub id"),
    ):
        with pytest.raises(ModelUnavailable, match=words):
            Engine(tiny_worker_settings(worker_cache, scorer=source)).check()
    check_scorer("openai/clip-vit-large-patch14")  # a real hub id passes without the network
    check_scorer("yuvalkirstain/PickScore_v1")


def test_a_scorer_that_fails_to_load_fails_only_its_request(tmp_path: Path, worker_cache: Path) -> None:
    engine = Engine(tiny_worker_settings(worker_cache, scorer=str(tmp_path / "gone")))
    with pytest.raises(Exception, match=r"the best-of scorer .* could not be loaded"):
        engine.render(engine.plan(GenerationRequest(prompt=PROMPT, best_of=2)))
    assert len(engine.render(engine.plan(GenerationRequest(prompt=PROMPT))).data) == 1
