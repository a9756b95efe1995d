"""Qwen-Image-Edit Plus (2509/2511) on a tiny real pipeline: up to 3 pictures, each reaching the VAE and the vision
encoder in order; a fourth is a 400; a request's images are one call with a generator each."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import tiny_worker_settings
from tests.worker.families.conftest import keyword_inputs, pictures, png_of, reached
from tests.worker.families.test_qwen_image_edit import load_with_processor
from tests.worker.test_engine import pixels
from worker.engine import Engine
from worker.errors import BadRequest
from worker.pipelines import Placement, load_pipeline
from worker.protocol import EditRequest, GenerationRequest
from worker.settings import ModelPreset

PLUS = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus"
# The pipeline resizes each picture to ~1024² for the VAE and ~384² for the vision encoder (its design); the
# tiny CPU test caps both, keeping their rounding to 32 so that each picture's aspect still shows in its shape.
VAE_AREA, CONDITION_AREA = 96 * 96, 96 * 96


@contextlib.contextmanager
def capped_plus(cache: Path, default: str = "plus", **others: ModelPreset) -> Iterator[Engine]:
    """An engine serving a tiny Qwen-Image-Edit Plus preset ("plus") and `others`, its pipeline's resizing capped
    meanwhile."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(f"{PLUS}.VAE_IMAGE_SIZE", VAE_AREA)
        patch.setattr(f"{PLUS}.CONDITION_IMAGE_SIZE", CONDITION_AREA)
        tiny = ModelPreset(source="tiny", family="qwen-image-edit-plus", steps=2, guidance=4.0, width=64, height=64,
                           max_pixels=128 * 128, prompt_language=["zh", "en"])  # fmt: skip
        settings = tiny_worker_settings(cache, warmup=False, models={**others, "plus": tiny}, default_model=default)
        yield Engine(settings, loader=plus_loader)


def plus_loader(preset: ModelPreset, placement: Placement, cache: Path) -> Any:
    """The worker's loader, with the processor built here for the Qwen presets (none can load without torchvision)."""
    if preset.family.startswith("qwen-image-edit"):
        return load_with_processor(preset, placement, cache)
    return load_pipeline(preset, placement, cache)


@pytest.fixture(scope="module")
def plus(worker_cache: Path) -> Iterator[Engine]:
    with capped_plus(worker_cache) as engine:
        yield engine


def vae_input(pipe: object, picture: object) -> torch.Tensor:
    """A picture as the pipeline gives it to the VAE: at its own aspect within the (capped) area, one frame long."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions

    width, height = calculate_dimensions(VAE_AREA, picture.width / picture.height)  # type: ignore[attr-defined]
    return pipe.image_processor.preprocess(picture, height, width).unsqueeze(2)  # type: ignore[attr-defined,no-any-return]


def test_every_picture_reaches_the_vae_and_the_vision_encoder_in_order(plus: Engine) -> None:
    source, cat, hat = pictures((96, 64), (64, 64), (64, 96))
    request = EditRequest(
        prompt="put the cat from picture 2, wearing the hat from picture 3, into picture 1", seed=4, size="96x64"
    )
    plan = plus.plan_edit(request, png_of(source), None, extra_images=[png_of(cat), png_of(hat)])
    assert (plan.mode, plan.input_images, plan.size.width, plan.size.height) == ("instruct", 3, 96, 64)
    pipe = plus._pipe("plus", "instruct")
    assert type(pipe).__name__ == "QwenImageEditPlusPipeline"
    (result, encoded), seen = keyword_inputs(pipe.text_encoder, lambda: reached(pipe, lambda: plus.render(plan)))
    expected = [vae_input(pipe, p) for p in (source, cat, hat)]
    assert [tuple(t.shape) for t in encoded] == [(1, 3, 1, 64, 128), (1, 3, 1, 96, 96), (1, 3, 1, 128, 64)]
    assert all(torch.allclose(t, e, atol=1e-5) for t, e in zip(encoded, expected, strict=True))
    # The vision encoder sees the three pictures, in order, each on its own grid ("Picture 1: ... Picture 3: ...").
    grids = seen[0]["image_grid_thw"].tolist()
    assert len(grids) == 3 and grids[0][1] < grids[0][2] and grids[2][1] > grids[2][2]
    text = pipe.tokenizer.decode(seen[0]["input_ids"][0])
    assert text.index("Picture 1:") < text.index("Picture 2:") < text.index("Picture 3:") < text.index("put the cat")
    used = result.data[0].parameters
    assert (used.mode, used.references, used.width, used.height) == ("instruct", 2, 96, 64)


def test_a_fourth_picture_is_a_400_naming_the_limit(plus: Engine) -> None:
    with pytest.raises(BadRequest) as caught:
        plus.plan_edit(EditRequest(prompt="merge them"), png_of(pictures((64, 64))[0]), None, extra_images=[b""] * 3)
    assert (caught.value.param, caught.value.message) == (
        "image",
        "model 'plus' (qwen-image-edit-plus) reads at most 3 pictures in one edit, the edited one first; got 4",
    )


def test_a_requests_images_are_one_call_and_each_equals_its_seed_alone(plus: Engine) -> None:
    source, cat = (png_of(p) for p in pictures((64, 64), (64, 64)))
    together = plus.render(plus.plan_edit(EditRequest(prompt="把猫放进图1", seed=2, n=2), source, None,
                                          extra_images=[cat]))  # fmt: skip
    assert [d.seed for d in together.data] == [2, 3]
    for index, data in enumerate(together.data):
        alone = plus.render(plus.plan_edit(EditRequest(prompt="把猫放进图1", seed=data.seed), source, None,
                                           extra_images=[cat]))  # fmt: skip
        assert np.abs(pixels(together, index) - pixels(alone)).max() <= 2


def test_a_new_picture_from_references_alone(plus: Engine) -> None:
    cat, hat = pictures((64, 64), (64, 96))
    encoded = [base64.b64encode(png_of(p)).decode() for p in (cat, hat)]
    plan = plus.plan(GenerationRequest(prompt="the cat from picture 1 in the hat from picture 2", seed=1,
                                       references=[f"data:image/png;base64,{encoded[0]}", encoded[1]]))  # fmt: skip
    assert (plan.mode, plan.image, plan.size.width, plan.size.height) == ("instruct", None, 64, 64)
    pipe = plus._pipe("plus", "instruct")
    result, seen = reached(pipe, lambda: plus.render(plan))
    assert all(torch.allclose(t, vae_input(pipe, p), atol=1e-5) for t, p in zip(seen, (cat, hat), strict=True))
    assert len(seen) == 2 and result.data[0].parameters.references == 2


def test_an_unreadable_picture_is_a_400_naming_which(plus: Engine) -> None:
    good = png_of(pictures((64, 64))[0])
    with pytest.raises(BadRequest) as caught:
        plus.plan_edit(EditRequest(prompt="merge"), good, None, extra_images=[good, b"not a picture"])
    assert (caught.value.param, caught.value.message) == (
        "image", "picture 3: couldn't read that image (PNG, JPEG, WebP or GIF)",
    )  # fmt: skip
    with pytest.raises(BadRequest) as caught:
        plus.plan(GenerationRequest(prompt="merge", references=[base64.b64encode(good).decode(), "%%%"]))
    assert (caught.value.param, caught.value.message) == ("references", "picture 2 is not base64 (or a data: URL)")
