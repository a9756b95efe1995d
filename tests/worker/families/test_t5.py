"""FLUX.1, Kontext and SD3.5 on tiny real pipelines: generate, batches, progress, cancel, LoRA, long prompts."""

from __future__ import annotations

import base64
import io

import pytest
import torch
from PIL import Image

from tests.worker.direct import assert_lora_as_fused
from tests.worker.test_engine import as_job, assert_batched_equals_unbatched
from worker.engine import Engine
from worker.errors import BadRequest
from worker.protocol import AdapterChoice, GenerationRequest, GenerationResponse
from worker.scheduler import Job, Progress


def test_generate_batched_equals_unbatched(t5_engine: Engine) -> None:
    plans = assert_batched_equals_unbatched(t5_engine, "a red fox", "a blue heron in the reeds")
    name = t5_engine.model_names[0]
    pipe = t5_engine._pipe(name, "generate")
    assert type(pipe).__name__ == plans[0].family.pipelines["generate"]


def test_progress_events_with_previews(t5_engine: Engine) -> None:
    plan = t5_engine.plan(GenerationRequest(prompt="a fox", seed=3, steps=3))
    events: list[Progress] = []
    t5_engine.run_batch([as_job(plan, "p")], lambda _job, event: events.append(event))
    assert [e.data["step"] for e in events if e.kind == "step"] == [1, 2, 3]
    previews = [e for e in events if e.kind == "preview"]
    assert [e.data["step"] for e in previews] == [1, 2]
    image = Image.open(io.BytesIO(base64.b64decode(previews[0].data["b64_png"])))
    assert (image.mode, image.size) == ("RGB", (32, 32))  # the latent grid: the tiny VAE downsamples by 2


def test_cancel_stops_at_the_next_step(t5_engine: Engine) -> None:
    plan = t5_engine.plan(GenerationRequest(prompt="a fox", seed=3, steps=10))
    job = as_job(plan, "c")
    steps: list[int] = []

    def report(_job: Job[GenerationResponse], event: Progress) -> None:
        if event.kind == "step":
            steps.append(event.data["step"])
            if event.data["step"] == 2:
                job.cancel_flag.set()

    t5_engine.run_batch([job], report)
    assert steps == [1, 2]


def test_lora_per_request_draws_what_diffusers_draws_with_it_fused(t5_engine: Engine) -> None:
    ink = AdapterChoice(name="ink", scale=0.5)
    plain = t5_engine.plan(GenerationRequest(prompt="a fox", seed=3))
    inked = t5_engine.plan(GenerationRequest(prompt="a fox", seed=3, adapters=[ink]))
    assert_lora_as_fused(t5_engine, plain, inked, ink, max_sequence_length=512)  # T5 reads up to its limit
    assert inked.key != plain.key


def test_textual_inversion_is_refused_clearly(t5_engine: Engine) -> None:
    name = t5_engine.model_names[0]
    with pytest.raises(BadRequest, match=f"model '{name}' \\({name}\\) cannot use the textual_inversion 'mycat'"):
        t5_engine.plan(GenerationRequest(prompt="a <c>", adapters=[AdapterChoice(name="mycat")]))


def prompt_of(tokenizer: object, tokens: int) -> str:
    """An English prompt that is exactly `tokens` T5 tokens long, end token included."""
    words = " ".join(f"word{i}" for i in range(400))
    ids = tokenizer(words, add_special_tokens=False).input_ids  # type: ignore[operator]
    text = tokenizer.decode(ids[: tokens - 1])  # type: ignore[attr-defined]
    assert len(tokenizer(text).input_ids) == tokens  # type: ignore[operator]
    return str(text)


def test_every_token_up_to_512_reaches_t5_and_513_is_a_clear_400(t5_engine: Engine) -> None:
    plan = t5_engine.plan(GenerationRequest(prompt="x", seed=1))
    pipe = t5_engine._pipe(plan.model, plan.mode)
    tokenizer = getattr(pipe, plan.family.t5_tokenizer)  # type: ignore[attr-defined]
    encoder = pipe.text_encoder_3 if hasattr(pipe, "text_encoder_3") else pipe.text_encoder_2
    longest = prompt_of(tokenizer, 512)
    seen: list[torch.Tensor] = []
    hook = encoder.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    try:
        t5_engine.render(t5_engine.plan(GenerationRequest(prompt=longest, seed=1)))
    finally:
        hook.remove()
    assert seen[0].shape[-1] == 512
    assert [int(t) for t in seen[0][0]] == tokenizer(longest).input_ids  # all 512, in order, none cut
    over = t5_engine.plan(GenerationRequest(prompt=longest + " z", seed=1))
    (outcome,) = t5_engine.run_batch([as_job(over, "long")], lambda j, e: None)
    assert isinstance(outcome, BadRequest)
    assert outcome.message == (
        f"the prompt is 513 tokens long; this {plan.family.name} model reads at most 512 (its T5 limit): shorten it"
    )
    assert outcome.param == "prompt"
