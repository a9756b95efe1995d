"""Qwen-Image-Edit on a tiny real pipeline: instruction edits, batches, progress, cancel, LoRA, long prompts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import tiny_worker_settings
from tests.worker.direct import assert_lora_as_fused
from tests.worker.families.conftest import keyword_inputs, tiny_transformer_lora
from tests.worker.test_engine import as_job, pixels, png
from worker.engine import Engine
from worker.errors import BadRequest, ModelUnavailable
from worker.families.qwen_image import QWEN_TOKEN_LIMIT
from worker.families.qwen_image_edit import tiny_qwen_processor
from worker.pipelines import Placement, load_pipeline
from worker.protocol import AdapterChoice, EditRequest, GenerationResponse
from worker.scheduler import Job, Progress
from worker.settings import AdapterSpec, ModelPreset

EDIT = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit.calculate_dimensions"


def load_with_processor(preset: ModelPreset, placement: Placement, cache: Path) -> Any:
    """The worker's loader, with the processor built here: transformers cannot load one without torchvision."""
    return load_pipeline(preset, placement, cache, processor=tiny_qwen_processor())


@pytest.fixture(scope="module")
def edit(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with pytest.MonkeyPatch.context() as patch:
        # The pipeline resizes every input to ~1024² (its design); a tiny CPU test keeps the input's own size.
        patch.setattr(EDIT, lambda area, ratio: (64, round(64 / ratio), None))
        tiny = ModelPreset(source="tiny", family="qwen-image-edit", steps=2, guidance=4.0, width=64, height=64,
                           max_pixels=128 * 128)  # fmt: skip
        lora = tiny_transformer_lora(
            "qwen-image-edit", worker_cache, tmp_path_factory.mktemp("lora"), processor=tiny_qwen_processor()
        )
        settings = tiny_worker_settings(
            worker_cache, warmup=False, models={"edit": tiny}, default_model="edit",
            adapters={"ink": AdapterSpec(kind="lora", source=str(lora))},
        )  # fmt: skip
        yield Engine(settings, loader=load_with_processor)


def test_without_torchvision_the_worker_refuses_to_start_naming_the_preset_and_package(edit: Engine) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        edit.check()
    assert caught.value.message == (
        "model preset 'edit': family 'qwen-image-edit' needs the Python package(s) torchvision: "
        "install the worker extra (pip install 'egaku[worker]')"
    )


def test_an_edit_without_a_mask_is_an_instruction_edit_with_the_parent_image(edit: Engine) -> None:
    plan = edit.plan_edit(EditRequest(prompt="make it night", seed=5), png((64, 64), "orange"), None)
    assert plan.mode == "instruct"
    pipe = edit._pipe("edit", "instruct")
    response, seen = keyword_inputs(pipe.transformer, lambda: edit.render(plan))
    assert type(pipe).__name__ == "QwenImageEditPipeline"
    assert (response.data[0].parameters.mode, pixels(response).shape) == ("instruct", (64, 64, 3))
    # The parent image's latents ride beside the noise: twice the 8x8 tokens of a 64² image (4x VAE, 2x2 patches).
    assert seen[0]["hidden_states"].shape[1] == 2 * 64


def test_an_edit_of_several_images_is_one_batch_equal_to_each_alone(edit: Engine) -> None:
    image = png((64, 64), "teal")
    together = edit.render(edit.plan_edit(EditRequest(prompt="把国王变成王后", seed=2, n=2), image, None))
    assert [d.seed for d in together.data] == [2, 3]
    for i, data in enumerate(together.data):
        alone = edit.render(edit.plan_edit(EditRequest(prompt="把国王变成王后", seed=data.seed), image, None))
        assert np.abs(pixels(together, i) - pixels(alone)).max() <= 2


def test_progress_previews_and_cancel(edit: Engine) -> None:
    plan = edit.plan_edit(EditRequest(prompt="make it night", seed=5, steps=10), png(), None)
    job = as_job(plan, "c")
    events: list[Progress] = []

    def report(_job: Job[GenerationResponse], event: Progress) -> None:
        events.append(event)
        if event.kind == "step" and event.data["step"] == 2:
            job.cancel_flag.set()

    edit.run_batch([job], report)
    assert [e.data["step"] for e in events if e.kind == "step"] == [1, 2]
    assert [e.data["step"] for e in events if e.kind == "preview"] == [1, 2]


def test_lora_per_request_draws_what_diffusers_draws_with_it_fused(edit: Engine) -> None:
    ink = AdapterChoice(name="ink")
    plain = edit.plan_edit(EditRequest(prompt="make it night", seed=3), png(), None)
    inked = edit.plan_edit(EditRequest(prompt="make it night", seed=3, adapters=[ink]), png(), None)
    # As Qwen-Image: an empty negative for real CFG, and the encoder reads up to the limit.
    assert_lora_as_fused(edit, plain, inked, ink, negative_prompt="", max_sequence_length=QWEN_TOKEN_LIMIT)


def test_every_instruction_token_up_to_1024_reaches_the_encoder_and_one_more_is_a_clear_400(edit: Engine) -> None:
    pipe = edit._pipe("edit", "instruct")
    longest = "夜" * 341 + "a"  # 3 tokens (bytes) per character: 1024 tokens
    plan = edit.plan_edit(EditRequest(prompt=longest, seed=1), png(), None)
    _, seen = keyword_inputs(pipe.text_encoder, lambda: edit.render(plan))
    assert longest in pipe.tokenizer.decode(seen[0]["input_ids"][0])  # whole, in order, after the image's tokens
    over = edit.plan_edit(EditRequest(prompt=longest + "z", seed=1), png(), None)
    (outcome,) = edit.run_batch([as_job(over, "long")], lambda j, e: None)
    assert isinstance(outcome, BadRequest)
    assert outcome.message == (
        "the prompt is 1025 tokens long; this qwen-image-edit model reads at most 1024 (its Qwen2.5-VL limit): "
        "shorten it"
    )
