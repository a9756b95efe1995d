"""Qwen-Image on a tiny real pipeline: generate, img2img, inpaint, batches, progress, cancel, LoRA, long prompts."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.worker.direct import assert_lora_as_fused
from tests.worker.families.conftest import family_engine, keyword_inputs
from tests.worker.test_engine import as_job, assert_batched_equals_unbatched, pixels, png, steps_until_cancelled
from worker.engine import Engine
from worker.errors import BadRequest
from worker.families.qwen_image import QWEN_TOKEN_LIMIT, QwenImage
from worker.protocol import AdapterChoice, EditRequest, GenerationRequest, Size
from worker.scheduler import Progress


@pytest.fixture(scope="module")
def qwen(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return family_engine("qwen-image", worker_cache, tmp_path_factory.mktemp("qwen"), guidance=4.0)


def test_generate_batched_equals_unbatched(qwen: Engine) -> None:
    assert_batched_equals_unbatched(qwen, "a red fox", "一只在芦苇中的蓝鹭")
    assert type(qwen._pipe("qwen-image", "generate")).__name__ == "QwenImagePipeline"


def test_img2img_and_inpaint_keep_the_size(qwen: Engine) -> None:
    img2img = qwen.plan_edit(EditRequest(prompt="a fox at night", seed=5, strength=0.5, steps=4), png((80, 48)), None)
    inpaint = qwen.plan_edit(EditRequest(prompt="a crown", mask_prompt="the fox", seed=5, steps=2), png(), None)
    for plan, mode, size in ((img2img, "img2img", (80, 48)), (inpaint, "inpaint", (64, 64))):
        response = qwen.render(plan)
        used = response.data[0].parameters
        assert (used.mode, used.width, used.height) == (mode, *size)
        assert pixels(response).shape == (size[1], size[0], 3)
        assert type(qwen._pipe("qwen-image", mode)).__name__ == QwenImage.pipelines[mode]


def test_guidance_is_true_cfg(qwen: Engine) -> None:
    seen: list[dict[str, object]] = []
    pipe = qwen._pipe("qwen-image", "generate")
    call = type(pipe).__call__
    original = pipe.__class__

    class Spy(original):  # type: ignore[misc, valid-type]
        def __call__(self, *args: object, **kwargs: object) -> object:
            seen.append(kwargs)
            return call(self, *args, **kwargs)

    pipe.__class__ = Spy
    try:
        qwen.render(qwen.plan(GenerationRequest(prompt="a fox", seed=1, guidance=2.5)))
    finally:
        pipe.__class__ = original
    assert (seen[0]["true_cfg_scale"], seen[0]["negative_prompt"]) == (2.5, [""])
    assert "guidance_scale" not in seen[0]


def test_progress_events_with_previews(qwen: Engine) -> None:
    plan = qwen.plan(GenerationRequest(prompt="a fox", seed=3, steps=3))
    events: list[Progress] = []
    qwen.run_batch([as_job(plan, "p")], lambda _job, event: events.append(event))
    assert [e.data["step"] for e in events if e.kind == "step"] == [1, 2, 3]
    previews = [e for e in events if e.kind == "preview"]
    assert [e.data["step"] for e in previews] == [1, 2]
    image = Image.open(io.BytesIO(base64.b64decode(previews[0].data["b64_png"])))
    assert (image.mode, image.size) == ("RGB", (16, 16))  # the latent grid: the VAE downsamples by 4


def test_packed_latents_unpack_as_diffusers_does() -> None:
    from diffusers import QwenImagePipeline

    packed = torch.randn(1, 4 * 6, 64)  # 4x6 tokens of 2x2 patches of 16 channels
    expected = QwenImagePipeline._unpack_latents(packed, height=64, width=96, vae_scale_factor=8)[0, :, 0]
    assert torch.equal(QwenImage().latent_image(packed[0], Size(width=96, height=64)), expected)


def test_cancel_stops_at_the_next_step(qwen: Engine) -> None:
    plan = qwen.plan(GenerationRequest(prompt="a fox", seed=3, steps=10))
    assert steps_until_cancelled(qwen, plan, at=2) == [1, 2]


def test_lora_per_request_draws_what_diffusers_draws_with_it_fused(qwen: Engine) -> None:
    ink = AdapterChoice(name="ink", scale=0.5)
    plain = qwen.plan(GenerationRequest(prompt="a fox", seed=3))
    inked = qwen.plan(GenerationRequest(prompt="a fox", seed=3, adapters=[ink]))
    # Real CFG needs a negative prompt (the engine's is empty), and the encoder reads up to the limit.
    assert_lora_as_fused(qwen, plain, inked, ink, negative_prompt="", max_sequence_length=QWEN_TOKEN_LIMIT)
    assert inked.key != plain.key


def test_every_token_up_to_the_limit_reaches_the_encoder_and_one_more_is_a_clear_400(qwen: Engine) -> None:
    plan = qwen.plan(GenerationRequest(prompt="x", seed=1))
    pipe = qwen._pipe(plan.model, plan.mode)
    template = pipe.prompt_template_encode
    before = len(pipe.tokenizer(template[: template.index("{}")]).input_ids)
    frame = len(pipe.tokenizer(template.format("")).input_ids)
    room = 1024 + 34 - frame  # diffusers keeps 1024 tokens after dropping the template's first 34
    assert QwenImage().room(pipe, plan.preset) == room
    longest = "狐" * (room // 3) + "a" * (room % 3)  # 3 bytes, so 3 tokens, per character
    plan = qwen.plan(GenerationRequest(prompt=longest, seed=1))
    _, seen = keyword_inputs(pipe.text_encoder, lambda: qwen.render(plan))
    read = seen[0]["input_ids"][0]
    expected = pipe.tokenizer(template.format(longest)).input_ids
    assert len(expected) == 34 + 1024
    assert [int(t) for t in read] == expected  # the whole templated prompt, in order, none cut
    assert pipe.tokenizer.decode(read[before : before + room]) == longest
    over = qwen.plan(GenerationRequest(prompt=longest + "z", seed=1))
    (outcome,) = qwen.run_batch([as_job(over, "long")], lambda j, e: None)
    assert isinstance(outcome, BadRequest)
    assert outcome.message == (
        f"the prompt is {room + 1} tokens long; this qwen-image model reads at most {room} "
        "(its Qwen2.5-VL limit): shorten it"
    )
    assert outcome.param == "prompt"
