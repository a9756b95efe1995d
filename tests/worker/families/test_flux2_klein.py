"""FLUX.2 [klein] on a tiny real pipeline: generate, reference edits (every picture, in order), inpaint, batches,
progress, cancel, LoRA, long prompts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from tests.worker.families.conftest import encoded_images, family_engine, keyword_inputs, pictures, png_of, reached

# The transformer families' shared tests run here unchanged, on Klein: they take the fixture `t5_engine`,
# which this module binds to its Klein engine (the name is theirs; Klein reads prompts with Qwen3).
from tests.worker.families.test_t5 import (  # noqa: F401
    test_cancel_stops_at_the_next_step,
    test_generate_batched_equals_unbatched,
    test_lora_per_request_draws_what_diffusers_draws_with_it_fused,
    test_progress_events_with_previews,
    test_textual_inversion_is_refused_clearly,
)
from tests.worker.test_engine import as_job, png
from worker.engine import Engine
from worker.errors import BadRequest
from worker.families.flux2_klein import Flux2Klein
from worker.protocol import EditRequest, GenerationRequest, Size


@pytest.fixture(scope="module")
def klein(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    # Distilled, as the 4B is: guidance 1.0 is what its presets use (it ignores guidance anyway).
    return family_engine("flux2-klein", worker_cache, tmp_path_factory.mktemp("klein"), guidance=1.0)


@pytest.fixture(scope="module")
def t5_engine(klein: Engine) -> Engine:
    return klein


def test_packed_latents_unpack_as_diffusers_does() -> None:
    from diffusers import Flux2KleinPipeline

    packed = torch.randn(1, 4 * 6, 128)  # 4x6 tokens of 2x2 patches of 32 channels
    grid = torch.zeros(1, 128, 4, 6)
    ids = Flux2KleinPipeline._prepare_latent_ids(grid)
    expected = Flux2KleinPipeline._unpatchify_latents(Flux2KleinPipeline._unpack_latents_with_ids(packed, ids, 4, 6))
    assert expected.shape == (1, 32, 8, 12)
    assert torch.equal(Flux2Klein().latent_image(packed[0], Size(width=96, height=64)), expected[0])


def test_an_edit_without_a_mask_reads_the_source_as_one_reference_at_its_own_size(klein: Engine) -> None:
    source = Image.new("RGB", (96, 64), "orange")
    source.paste(Image.new("RGB", (48, 32), "navy"), (0, 0))
    request = EditRequest(prompt="a fox in an orange field at night", seed=2, n=2, size="96x64")  # its own size
    plan = klein.plan_edit(request, png_of(source), None)
    assert (plan.mode, plan.strength, plan.size.width, plan.size.height) == ("instruct", None, 96, 64)
    pipe = klein._pipe("flux2-klein", "instruct")
    assert pipe is klein._pipe("flux2-klein", "generate")  # one pipeline draws and edits
    seen, hook = encoded_images(pipe)
    try:
        result, steps = keyword_inputs(pipe.transformer, lambda: klein.render(plan))
    finally:
        hook.remove()  # type: ignore[attr-defined]
    assert [(d.parameters.mode, d.parameters.width, d.parameters.height) for d in result.data] == [
        ("instruct", 96, 64)
    ] * 2
    expected = pipe.image_processor.preprocess(source, 64, 96, resize_mode="crop")
    assert [tuple(t.shape) for t in seen] == [(1, 3, 64, 96)]  # encoded once, shared by both samples
    assert torch.allclose(seen[0], expected, atol=1e-5)  # the source itself is the reference
    # Noise and reference side by side: twice the 24x16 tokens of a 96x64 picture (2x VAE, 2x2 patches).
    assert [step["hidden_states"].shape[1] for step in steps] == [2 * 24 * 16] * 2


def test_a_reference_smaller_than_klein_reads_is_a_clear_400(klein: Engine) -> None:
    plan = klein.plan_edit(EditRequest(prompt="night", seed=1), png((48, 48)), None)
    (outcome,) = klein.run_batch([as_job(plan, "small")], lambda j, e: None)
    assert isinstance(outcome, BadRequest)
    assert outcome.message == "flux2-klein reads pictures at least 64 px a side and at most 8:1; picture 1 is 48x48"
    assert outcome.param == "image"
    plan = klein.plan_edit(EditRequest(prompt="night", seed=1), png((64, 64)), None, extra_images=[png((32, 64))])
    (outcome,) = klein.run_batch([as_job(plan, "small-reference")], lambda j, e: None)
    assert isinstance(outcome, BadRequest)
    assert outcome.message == "flux2-klein reads pictures at least 64 px a side and at most 8:1; picture 2 is 32x64"


def test_every_picture_of_an_edit_reaches_klein_in_order_and_a_fifth_is_a_400(klein: Engine) -> None:
    source, *others = pictures((96, 64), (64, 64), (64, 96), (80, 64))
    request = EditRequest(prompt="the fox from picture 2 and the hat from picture 4 in picture 1", seed=3, size="96x64")
    plan = klein.plan_edit(request, png_of(source), None, extra_images=[png_of(p) for p in others])
    assert (plan.mode, plan.input_images, len(plan.references)) == ("instruct", 4, 3)
    pipe = klein._pipe("flux2-klein", "instruct")
    result, seen = reached(pipe, lambda: klein.render(plan))
    expected = [pipe.image_processor.preprocess(p, p.height, p.width, resize_mode="crop") for p in [source, *others]]
    assert [tuple(t.shape) for t in seen] == [tuple(e.shape) for e in expected]  # each once, in the request's order
    assert all(torch.allclose(t, e, atol=1e-5) for t, e in zip(seen, expected, strict=True))
    used = result.data[0].parameters
    assert (used.references, used.reference_role, used.reference_scale, used.width, used.height) == (
        3, "subject", None, 96, 64,
    )  # fmt: skip
    with pytest.raises(BadRequest) as caught:
        klein.plan_edit(request, png_of(source), None, extra_images=[png_of(p) for p in others] + [png((64, 64))])
    assert (caught.value.param, caught.value.message) == (
        "image",
        "model 'flux2-klein' (flux2-klein) reads at most 4 pictures in one edit, the edited one first; got 5",
    )


def test_a_new_picture_from_references_alone_reads_each_in_order(klein: Engine) -> None:
    refs = pictures((64, 64), (96, 64))
    request = GenerationRequest(prompt="the cat from picture 1 wearing the hat from picture 2", seed=4,
                                references=[base64.b64encode(png_of(p)).decode() for p in refs])  # fmt: skip
    plan = klein.plan(request)
    assert (plan.mode, plan.image, plan.size.width, plan.input_images) == ("instruct", None, 64, 2)
    pipe = klein._pipe("flux2-klein", "instruct")
    result, seen = reached(pipe, lambda: klein.render(plan))
    expected = [pipe.image_processor.preprocess(p, p.height, p.width, resize_mode="crop") for p in refs]
    assert all(torch.allclose(t, e, atol=1e-5) for t, e in zip(seen, expected, strict=True)) and len(seen) == 2
    assert result.data[0].parameters.references == 2
    over = request.model_copy(update={"references": request.references * 2 + request.references[:1]})
    with pytest.raises(BadRequest) as caught:
        klein.plan(over)
    assert (caught.value.param, caught.value.message) == (
        "references",
        "model 'flux2-klein' (flux2-klein) reads at most 4 reference pictures; got 5",
    )


def test_a_region_edit_reads_one_reference_for_the_masked_area(klein: Engine) -> None:
    source, hat = pictures((96, 64), (64, 64))
    request = EditRequest(prompt="the fox wearing the hat from picture 2", mask_prompt="the fox", seed=5, strength=0.9)
    plan = klein.plan_edit(request, png_of(source), None, extra_images=[png_of(hat)])
    assert (plan.mode, len(plan.references)) == ("inpaint", 1)
    pipe = klein._pipe("flux2-klein", "inpaint")
    _, seen = reached(pipe, lambda: klein.render(plan))
    expected = pipe.image_processor.preprocess(hat, 64, 64, resize_mode="crop")
    assert sum(torch.allclose(t, expected, atol=1e-5) for t in seen if t.shape == expected.shape) == 1
    with pytest.raises(BadRequest, match="reads at most 2 pictures in one edit, the edited one first; got 3"):
        klein.plan_edit(request, png_of(source), None, extra_images=[png_of(hat), png_of(hat)])


def test_a_region_edit_by_words_uses_klein_inpaint(klein: Engine) -> None:
    request = EditRequest(
        prompt="a fox wearing a golden crown", mask_prompt="the fox", seed=5, steps=2, strength=0.9, size="96x64"
    )
    plan = klein.plan_edit(request, png((96, 64)), None)
    assert plan.mode == "inpaint"
    used = klein.render(plan).data[0].parameters
    assert (used.mode, used.width, used.height, used.strength) == ("inpaint", 96, 64, 0.9)
    assert type(klein._pipe("flux2-klein", "inpaint")).__name__ == "Flux2KleinInpaintPipeline"


def test_the_negative_prompt_is_dropped_and_says_so(klein: Engine) -> None:
    plan = klein.plan(GenerationRequest(prompt="a fox", negative_prompt="blurry", style="watercolor", seed=1))
    assert plan.negative is None
    assert klein.render(plan).data[0].parameters.negative_prompt is None


def chat(pipe: Any, text: str) -> list[int]:
    """The token ids diffusers gives Qwen3 for `text`, before padding."""
    messages = [{"role": "user", "content": text}]
    rendered = pipe.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=False)  # fmt: skip
    return list(pipe.tokenizer(rendered).input_ids)


def test_every_token_up_to_the_limit_reaches_qwen3_and_one_more_is_a_clear_400(klein: Engine) -> None:
    pipe = klein._pipe("flux2-klein", "generate")
    frame = len(chat(pipe, ""))
    # "<|im_start|>user\n" before the prompt, "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n" after it.
    assert frame == 25
    room = 512 - frame
    longest = "狐" * (room // 3) + "a" * (room % 3)  # 3 bytes, so 3 tokens, per character
    plan = klein.plan(GenerationRequest(prompt=longest, seed=1))
    _, seen = keyword_inputs(pipe.text_encoder, lambda: klein.render(plan))
    expected = chat(pipe, longest)
    assert len(expected) == 512
    assert [int(t) for t in seen[0]["input_ids"][0]] == expected  # the whole templated prompt, in order, none cut
    over = as_job(klein.plan(GenerationRequest(prompt=longest + "z")), "long")
    (outcome,) = klein.run_batch([over], lambda j, e: None)
    assert isinstance(outcome, BadRequest) and (outcome.param, outcome.message) == (
        "prompt",
        f"the prompt is {room + 1} tokens long; this flux2-klein model reads at most {room} (its Qwen3 limit): "
        "shorten it",
    )


def test_a_preset_may_read_fewer_tokens(worker_cache: Path, tmp_path: Path) -> None:
    short = family_engine("flux2-klein", worker_cache, tmp_path, guidance=1.0, prompt_tokens=64)
    room = 64 - 25
    short.render(short.plan(GenerationRequest(prompt="a" * room, seed=1)))
    over = short.plan(GenerationRequest(prompt="a" * (room + 1), seed=1))
    (outcome,) = short.run_batch([as_job(over, "o")], lambda j, e: None)
    assert isinstance(outcome, BadRequest) and f"reads at most {room} (its Qwen3 limit)" in outcome.message
