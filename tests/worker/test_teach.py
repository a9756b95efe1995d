"""Textual inversion on the tiny SD1.5 and SDXL pipelines: a word learned, saved, loaded for one request only."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_worker_settings
from tests.worker.direct import assert_word_as_loaded
from tests.worker.test_engine import pixels
from worker.engine import Engine
from worker.errors import BadRequest
from worker.families import family_for
from worker.protocol import ConceptChoice, GenerationRequest, TeachRequest
from worker.settings import ModelPreset
from worker.teach import fit_picture, read_embedding

TOKEN = "<our-mascot>"


def picture(colour: str, size: tuple[int, int] = (80, 60)) -> bytes:
    """A small PNG: a coloured square on grey, so the pictures share a subject."""
    image = Image.new("RGB", size, "grey")
    image.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), colour), (size[0] // 4, size[1] // 4))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


PICTURES = [picture(c) for c in ("red", "orange", "yellow")]


def teach_engine(cache: Path, family: str) -> Engine:
    """An engine whose default preset is the tiny pipeline of `family`."""
    preset = ModelPreset(source="tiny", family=family, steps=2, guidance=5.0, width=64, height=64, max_pixels=128 * 128)
    return Engine(tiny_worker_settings(cache, warmup=False, models={family: preset}, default_model=family))


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def taught(request: pytest.FixtureRequest, worker_cache: Path) -> tuple[Engine, str, bytes, list[torch.Tensor]]:
    """Per family: an engine, and a word trained for 3 steps (the trainer's initial vectors kept)."""
    engine = teach_engine(worker_cache, request.param)
    plan = engine.plan_teach(TeachRequest(token=TOKEN, init_word="toy", steps=3, seed=5), PICTURES, "lesson")
    trainer = engine.trainer(plan)
    trainer.run(3)
    assert trainer.step == 3 and trainer.loss is not None
    return engine, request.param, trainer.embedding_file(), trainer.initial


def test_training_moves_the_word_away_from_its_start_and_saves_what_the_family_loads(
    taught: tuple[Engine, str, bytes, list[torch.Tensor]],
) -> None:
    engine, family, data, initial = taught
    saved = read_embedding(data)
    keys = {"sd15": ["emb_params"], "sdxl": ["clip_l", "clip_g"]}[family]
    assert sorted(saved) == sorted(keys)  # SDXL: both encoders trained
    for key, start in zip(keys, initial, strict=True):
        assert saved[key].shape == (1, 32)
        assert float((saved[key][0] - start).abs().max()) > 1e-4  # it learned: not the init word's vector
    pipe = engine._pipe(family, "generate")
    before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    path = engine._adapters._concept_file(data)
    family_for(family).load_textual_inversion(pipe, str(path), TOKEN)
    (token_id,) = pipe.tokenizer(TOKEN, add_special_tokens=False).input_ids
    loaded = pipe.text_encoder.get_input_embeddings().weight[token_id].detach()
    assert torch.allclose(loaded, saved[keys[0]][0])
    family_for(family).unload_textual_inversion(pipe, TOKEN)
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight, before)  # out again, nothing else moved


def test_a_prompt_with_the_word_draws_what_diffusers_draws_with_the_file_for_that_request_only(
    taught: tuple[Engine, str, bytes, list[torch.Tensor]], tmp_path: Path
) -> None:
    engine, family, data, _ = taught
    concept = ConceptChoice(token=TOKEN, embedding=base64.b64encode(data).decode())
    prompt = f"{TOKEN} on the moon"
    plain = engine.plan(GenerationRequest(prompt=prompt, seed=9))
    taught_plan = engine.plan(GenerationRequest(prompt=prompt, seed=9, concepts=[concept]))
    before = pixels(engine.render(plain))
    (tmp_path / "word.safetensors").write_bytes(data)
    assert_word_as_loaded(engine, plain, taught_plan, tmp_path / "word.safetensors", TOKEN)  # what the file means
    assert np.array_equal(pixels(engine.render(plain)), before)  # and only for the request that brought it
    assert engine.render(taught_plan).data[0].parameters.concepts == [TOKEN]
    assert TOKEN not in engine._pipe(family, "generate").tokenizer.get_vocab()


def test_training_leaves_the_shared_pipeline_untouched(worker_cache: Path) -> None:
    engine = teach_engine(worker_cache, "sd15")
    request = GenerationRequest(prompt="a toy on the moon", seed=4)
    before = pixels(engine.render(engine.plan(request)))
    trainer = engine.trainer(engine.plan_teach(TeachRequest(token=TOKEN, steps=2, seed=1), PICTURES))
    trainer.run(2)
    after = pixels(engine.render(engine.plan(request)))
    assert np.array_equal(before, after)  # renders between training chunks see the model as it was


@pytest.mark.parametrize(
    ("count", "message"),
    [(2, "teaching a word takes 3 to 10 pictures; got 2"), (11, "teaching a word takes 3 to 10 pictures; got 11")],
)
def test_the_bounds_refuse_too_few_and_too_many_pictures(engine: Engine, count: int, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        engine.plan_teach(TeachRequest(token=TOKEN), [PICTURES[0]] * count)
    assert (caught.value.message, caught.value.param) == (message, "image")


def test_unreadable_pictures_and_too_many_steps_are_refused_before_training(engine: Engine) -> None:
    with pytest.raises(BadRequest) as broken:
        engine.plan_teach(TeachRequest(token=TOKEN), [*PICTURES[:2], b"\x89PNG\r\n\x1a\n truncated"])
    assert broken.value.message == "couldn't read that image: the file is damaged or truncated"
    with pytest.raises(BadRequest) as steps:
        engine.plan_teach(TeachRequest(token=TOKEN, steps=1001), PICTURES)
    assert (steps.value.message, steps.value.param) == ("steps: at most 1000 training steps here", "steps")


def test_the_training_size_follows_the_preset_and_pictures_are_cropped_to_it(engine: Engine) -> None:
    plan = engine.plan_teach(TeachRequest(token=TOKEN), [picture("red", (300, 100))] * 3)
    assert (plan.size.width, plan.size.height) == (64, 64)
    assert {p.size for p in plan.pictures} == {(64, 64)}
    wide = fit_picture(Image.new("RGB", (300, 100)), plan.size)
    assert wide.size == (64, 64)


def test_t5_and_flux_families_refuse_to_learn_words_with_a_reason(worker_cache: Path) -> None:
    flux = ModelPreset(source="tiny", family="flux", steps=2, width=64, height=64)
    qwen = ModelPreset(source="tiny", family="qwen-image", steps=2, width=64, height=64)
    engine = Engine(tiny_worker_settings(worker_cache, models={"flux": flux, "qwen": qwen}, default_model="flux"))
    with pytest.raises(BadRequest) as refused:
        engine.plan_teach(TeachRequest(token=TOKEN, model="flux"), PICTURES)
    assert refused.value.param == "model"
    assert refused.value.message.startswith("model 'flux' (flux) cannot learn new words: FLUX reads a prompt's")
    with pytest.raises(BadRequest) as qwen_refused:
        engine.plan_teach(TeachRequest(token=TOKEN, model="qwen"), PICTURES)
    assert qwen_refused.value.message == (
        "model 'qwen' (qwen-image) cannot learn new words: its prompts are read by a text encoder that is not CLIP; "
        "textual inversion works on the sd15 and sdxl families"
    )
    with pytest.raises(BadRequest) as use:
        engine.plan(
            GenerationRequest(prompt=f"{TOKEN}", model="flux", concepts=[{"token": TOKEN, "embedding": "AAAA"}])
        )  # type: ignore[list-item]
    assert (use.value.message, use.value.param) == ("model 'flux' (flux) cannot use taught words", "concepts")


def test_a_file_that_does_not_fit_the_model_is_a_400(engine: Engine) -> None:
    from safetensors.torch import save

    wrong = base64.b64encode(save({"clip_l": torch.zeros(1, 7), "clip_g": torch.zeros(1, 7)})).decode()
    plan = engine.plan(GenerationRequest(prompt=f"{TOKEN}", seed=1, concepts=[{"token": TOKEN, "embedding": wrong}]))  # type: ignore[list-item]
    with pytest.raises(BadRequest) as refused:
        engine.render(plan)
    assert refused.value.message.startswith(f"the file of {TOKEN} does not fit model 'tiny'")
    assert TOKEN not in engine._pipe("tiny", "generate").tokenizer.get_vocab()


@pytest.mark.parametrize("data", [b"not a safetensors file at all", b"\x80\x04\x95" + b"pickle?" * 10])
def test_any_file_that_does_not_load_is_a_plain_400_and_is_not_kept(engine: Engine, data: bytes) -> None:
    embedding = base64.b64encode(data).decode()
    plan = engine.plan(
        GenerationRequest(prompt=f"{TOKEN}", seed=1, concepts=[{"token": TOKEN, "embedding": embedding}])
    )  # type: ignore[list-item]
    with pytest.raises(BadRequest) as refused:
        engine.render(plan)
    assert (refused.value.message, refused.value.param) == (
        f"the file of {TOKEN} does not fit model 'tiny'",
        "concepts",
    )
    cache = engine.cache_dir / "concepts"
    assert not any(cache.glob("*.safetensors")) or all(p.read_bytes() != data for p in cache.glob("*"))
    assert str(engine.cache_dir) not in refused.value.message


def test_the_concept_cache_is_bounded(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import worker.adapters

    monkeypatch.setattr(worker.adapters, "MAX_CACHED_CONCEPTS", 3)
    paths = [engine._adapters._concept_file(f"concept {n}".encode()) for n in range(5)]
    kept = {p.name for p in (engine.cache_dir / "concepts").glob("*.safetensors")}
    assert kept == {p.name for p in paths[-3:]}
