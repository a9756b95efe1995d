"""Z-Image (Turbo) on a tiny real pipeline: generate, img2img, inpaint, batches, progress, cancel, LoRA, prompts
counted in Qwen3's template (thinking on); it reads no reference pictures, and says so."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.worker.families.conftest import family_engine, keyword_inputs, pictures, png_of, reached

# The transformer families' shared tests run here unchanged, on Z-Image: they take the fixture `t5_engine`,
# which this module binds to its Z-Image engine (the name is theirs; Z-Image reads prompts with Qwen3).
from tests.worker.families.test_t5 import (  # noqa: F401
    test_cancel_stops_at_the_next_step,
    test_generate_batched_equals_unbatched,
    test_lora_per_request_draws_what_diffusers_draws_with_it_fused,
    test_progress_events_with_previews,
    test_textual_inversion_is_refused_clearly,
)
from tests.worker.test_engine import as_job, pixels, png
from worker.engine import Engine
from worker.errors import BadRequest
from worker.protocol import EditRequest, GenerationRequest


@pytest.fixture(scope="module")
def z_image(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    # Turbo's own settings: 8 steps at guidance 0 (the tests ask for fewer steps where they say so).
    return family_engine("z-image", worker_cache, tmp_path_factory.mktemp("z"), steps=8, guidance=0.0)


@pytest.fixture(scope="module")
def t5_engine(z_image: Engine) -> Engine:
    return z_image


def test_it_draws_through_from_pretrained_at_turbo_settings(z_image: Engine) -> None:
    plan = z_image.plan(GenerationRequest(prompt="a red fox in the snow", seed=1, size="64x48"))
    assert (plan.steps, plan.guidance) == (8, 0.0)
    result = z_image.render(plan)
    assert type(z_image._pipe("z-image", "generate")).__name__ == "ZImagePipeline"
    assert pixels(result).shape == (48, 64, 3)


def test_an_edit_is_img2img_and_a_region_edit_is_inpaint_keeping_the_rest(z_image: Engine) -> None:
    source = pictures((64, 48))[0]
    plan = z_image.plan_edit(EditRequest(prompt="the fox at night", seed=2, steps=4, strength=0.5), png_of(source),
                             None)  # fmt: skip
    pipe = z_image._pipe("z-image", "img2img")
    result, seen = reached(pipe, lambda: z_image.render(plan))
    assert (type(pipe).__name__, result.data[0].parameters.mode, pixels(result).shape) == (
        "ZImageImg2ImgPipeline", "img2img", (48, 64, 3),
    )  # fmt: skip
    assert np.allclose(seen[0][0].numpy(), pipe.image_processor.preprocess(source, 48, 64)[0].numpy(), atol=1e-5)
    region = z_image.plan_edit(
        EditRequest(prompt="a crown", mask_prompt="the fox", seed=3, steps=4, strength=0.9), png_of(source), None
    )
    used = z_image.render(region).data[0].parameters
    assert (used.mode, type(z_image._pipe("z-image", "inpaint")).__name__) == ("inpaint", "ZImageInpaintPipeline")


def test_reference_pictures_are_a_400_naming_the_limit(z_image: Engine) -> None:
    with pytest.raises(BadRequest) as caught:
        z_image.plan_edit(EditRequest(prompt="merge"), png(), None, extra_images=[png()])
    assert (caught.value.param, caught.value.message) == (
        "image",
        "model 'z-image' (z-image) reads at most 1 picture in one edit, the edited one first; got 2",
    )
    with pytest.raises(BadRequest) as caught:
        z_image.plan(GenerationRequest(prompt="in this style", references=[base64.b64encode(png()).decode()]))
    assert (caught.value.param, caught.value.message) == (
        "references",
        "model 'z-image' (z-image) draws nothing from reference pictures",
    )


def chat(pipe: Any, text: str) -> list[int]:
    """The token ids diffusers gives Qwen3 for `text` (thinking on, as Z-Image renders it), before padding."""
    messages = [{"role": "user", "content": text}]
    rendered = pipe.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=True)  # fmt: skip
    return list(pipe.tokenizer(rendered).input_ids)


def test_every_token_up_to_the_limit_reaches_qwen3_and_one_more_is_a_clear_400(z_image: Engine) -> None:
    pipe = z_image._pipe("z-image", "generate")
    frame = len(chat(pipe, ""))
    assert frame == 19  # "<|im_start|>user\n" before the prompt, "<|im_end|>\n<|im_start|>assistant\n" after it
    room = 512 - frame
    longest = "狐" * (room // 3) + "a" * (room % 3)  # 3 bytes, so 3 tokens, per character
    plan = z_image.plan(GenerationRequest(prompt=longest, seed=1, steps=1))
    _, seen = keyword_inputs(pipe.text_encoder, lambda: z_image.render(plan))
    assert [int(t) for t in seen[0]["input_ids"][0]] == chat(pipe, longest)  # whole, in order, none cut
    over = as_job(z_image.plan(GenerationRequest(prompt=longest + "z", steps=1)), "long")
    (outcome,) = z_image.run_batch([over], lambda j, e: None)
    assert isinstance(outcome, BadRequest) and outcome.message == (
        f"the prompt is {room + 1} tokens long; this z-image model reads at most {room} (its Qwen3 limit): shorten it"
    )
