"""Several pictures over the wire: the official `openai` client's images.edit(image=[a, b, c]) with no extra_body,
each picture reaching the model in order; one past the model's limit is a 400 naming it; a new picture drawn from
`references`, egaku's extension on generations."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import openai
import pytest
import torch

from tests.fakes.serving import serving_worker
from tests.worker.families.conftest import encoded_images, pictures, png_of
from tests.worker.families.test_qwen_image_edit_plus import capped_plus, vae_input
from worker.engine import Engine
from worker.protocol import image_tokens


@dataclass
class Served:
    """A worker serving a tiny Qwen-Image-Edit Plus preset, and both official clients pointed at it."""

    url: str
    engine: Engine
    sync: openai.OpenAI
    client: openai.AsyncOpenAI


@pytest.fixture(scope="module")
def engine(worker_cache: Path) -> Iterator[Engine]:
    with capped_plus(worker_cache) as engine:
        engine.load()
        yield engine


@pytest.fixture
async def served(engine: Engine, worker_cache: Path) -> AsyncIterator[Served]:
    async with serving_worker(engine, engine._settings) as url:
        sync = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        yield Served(url, engine, sync, client)
        await client.close()
        sync.close()


def files(*made: object) -> list[tuple[str, bytes, str]]:
    """Pictures as the openai client's file tuples."""
    return [(f"{i}.png", png_of(p), "image/png") for i, p in enumerate(made)]  # type: ignore[arg-type]


async def test_the_official_client_edits_three_pictures_in_order_with_no_extra_body(served: Served) -> None:
    made = pictures((96, 64), (64, 64), (64, 96))
    pipe = served.engine._pipe("plus", "instruct")
    seen, hook = encoded_images(pipe)
    try:
        # The source's own size, asked for: unasked, an edit is drawn within the preset's size (64x64's pixels).
        result = await served.client.images.edit(
            image=files(*made),
            prompt="put the cat from picture 2, in the hat from picture 3, into picture 1",
            size="96x64",  # type: ignore[arg-type]
        )
        synced = await asyncio.to_thread(
            lambda: served.sync.images.edit(
                image=files(*made[:2]),
                prompt="the cat from picture 2 in picture 1",
                size="96x64",  # type: ignore[arg-type]
            )
        )
    finally:
        hook.remove()  # type: ignore[attr-defined]
    expected = [vae_input(pipe, p) for p in (*made, *made[:2])]
    assert len(seen) == 5 and all(torch.allclose(t, e, atol=1e-5) for t, e in zip(seen, expected, strict=True))
    used = [(item.model_extra or {})["parameters"] for item in (*(result.data or []), *(synced.data or []))]
    assert [(u["mode"], u["references"], u["width"], u["height"]) for u in used] == [
        ("instruct", 2, 96, 64), ("instruct", 1, 96, 64),
    ]  # fmt: skip
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens == sum(
        image_tokens(p.width, p.height) for p in made
    )


async def test_a_fourth_picture_is_a_400_naming_the_limit(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await served.client.images.edit(image=files(*pictures(*[(64, 64)] * 4)), prompt="merge them")
    assert caught.value.param == "image"
    assert "model 'plus' (qwen-image-edit-plus) reads at most 3 pictures in one edit, the edited one first; got 4" in (
        caught.value.message
    )


async def test_a_new_picture_from_references_is_egakus_extension_on_generations(served: Served) -> None:
    cat, hat = pictures((64, 64), (64, 96))
    references = [f"data:image/png;base64,{base64.b64encode(png_of(cat)).decode()}",
                  base64.b64encode(png_of(hat)).decode()]  # fmt: skip
    body = {"prompt": "the cat from picture 1 in the hat from picture 2", "references": references, "seed": 4}
    async with aiohttp.ClientSession() as session, session.post(served.url + "/v1/images/generations", json=body) as r:
        assert r.status == 200, await r.text()
        answer = await r.json()
    used = answer["data"][0]["parameters"]
    assert (used["mode"], used["references"], used["reference_role"], used["reference_scale"]) == (
        "instruct", 2, "subject", None,
    )  # fmt: skip
    # The same through the official client: the extension rides in extra_body, as any client's own fields do.
    result = await served.client.images.generate(prompt=body["prompt"], extra_body={"references": references})
    assert result.data and (result.data[0].model_extra or {})["parameters"]["references"] == 2


async def test_an_edit_takes_its_references_as_image_files_not_a_field(served: Served) -> None:
    form = aiohttp.FormData()
    form.add_field("image", png_of(pictures((64, 64))[0]), filename="a.png", content_type="image/png")
    form.add_field("prompt", "the cat")
    form.add_field("references", "aGk=")
    async with aiohttp.ClientSession() as session, session.post(served.url + "/v1/images/edits", data=form) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert (error["param"], error["message"]) == (
        "references", "an edit's references are further image[] files, after the one edited",
    )  # fmt: skip
