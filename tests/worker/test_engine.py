"""The engine on tiny real pipelines: batching, long prompts, progress, cancel, edits, masks."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_worker_settings
from worker.engine import Engine
from worker.errors import BadRequest
from worker.plan import Plan
from worker.protocol import EditRequest, GenerationRequest, GenerationResponse
from worker.scheduler import Job, Progress
from worker.settings import ModelPreset


def pixels(response: GenerationResponse, index: int = 0) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(response.data[index].b64_json))), dtype=np.int16)


def as_job(plan: Plan, job_id: str) -> Job[GenerationResponse]:
    return Job(id=job_id, user=job_id, plan=plan, key=plan.key)


def png(size: tuple[int, int] = (64, 64), colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_batched_equals_unbatched(engine: Engine, first: str, second: str) -> list[Plan]:
    """Two requests (of 1 and 2 images) share a batch, and every image equals the one made alone; the plans."""
    plans = [
        engine.plan(GenerationRequest(prompt=first, seed=11), "a"),
        engine.plan(GenerationRequest(prompt=second, seed=22, n=2), "b"),
    ]
    assert plans[0].key == plans[1].key
    batched = engine.run_batch([as_job(p, p.job_id) for p in plans], lambda j, e: None)
    alone = [engine.render(p) for p in plans]
    for together, single in zip(batched, alone, strict=True):
        assert isinstance(together, GenerationResponse)
        assert [d.seed for d in together.data] == [d.seed for d in single.data]
        for i in range(len(single.data)):
            assert pixels(together, i).shape == (64, 64, 3)
            assert np.abs(pixels(together, i) - pixels(single, i)).max() <= 2
    return plans


def test_batched_output_equals_unbatched(engine: Engine) -> None:
    assert_batched_equals_unbatched(engine, "a red fox", "a blue heron")


def test_every_prompt_token_reaches_the_encoders(engine: Engine) -> None:
    words = " ".join(f"word{i}" for i in range(60))  # ~400 byte-level tokens: six windows
    plan = engine.plan(GenerationRequest(prompt=words, seed=1))
    pipe = engine._pipe(plan.model, plan.mode)
    seen: dict[str, list[torch.Tensor]] = {"text_encoder": [], "text_encoder_2": []}
    hooks = [
        getattr(pipe, name).register_forward_pre_hook(lambda _m, args, kwargs, n=name: seen[n].append(
            (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]).clone()
        ), with_kwargs=True)
        for name in seen
    ]  # fmt: skip
    try:
        engine.render(plan)
    finally:
        for hook in hooks:
            hook.remove()
    tokenizer = pipe.tokenizer
    wanted = tokenizer(words, add_special_tokens=False).input_ids
    special = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    for name, calls in seen.items():
        ids = [int(t) for t in calls[0].flatten() if int(t) not in special]
        assert ids == wanted, name  # 100% of the prompt's tokens, in order
    assert len(wanted) > 3 * 75


def test_short_prompts_take_diffusers_own_path(engine: Engine) -> None:
    from worker.families.clip import windows_needed

    plan = engine.plan(GenerationRequest(prompt="a fox", seed=1))
    assert windows_needed(engine._pipe(plan.model, plan.mode).tokenizer, ["a fox"]) == 1


def test_progress_events_in_order_with_previews(engine: Engine) -> None:
    plan = engine.plan(GenerationRequest(prompt="a fox", seed=3, steps=3))
    events: list[Progress] = []
    engine.run_batch([as_job(plan, "p")], lambda _job, event: events.append(event))
    steps = [e.data["step"] for e in events if e.kind == "step"]
    assert steps == [1, 2, 3]
    assert [e.data["step"] for e in events if e.kind == "preview"] == [1, 2]  # preview_every=1, none after the last
    assert events[-1].kind == "step" and events[-1].data["eta_s"] == 0
    preview = Image.open(io.BytesIO(base64.b64decode(next(e for e in events if e.kind == "preview").data["b64_png"])))
    assert preview.size == (32, 32)  # latent resolution: the tiny VAE downsamples by 2


def steps_until_cancelled(engine: Engine, plan: Plan, at: int) -> list[int]:
    """Run a plan, cancelling it when step `at` is reported; the steps that were reported."""
    job = as_job(plan, "c")
    steps: list[int] = []

    def report(_job: Job[GenerationResponse], event: Progress) -> None:
        if event.kind == "step":
            steps.append(event.data["step"])
            if event.data["step"] == at:
                job.cancel_flag.set()

    engine.run_batch([job], report)
    return steps


def test_cancelling_a_running_job_stops_at_the_next_step(engine: Engine) -> None:
    plan = engine.plan(GenerationRequest(prompt="a fox", seed=3, steps=10))
    assert steps_until_cancelled(engine, plan, at=2) == [1, 2]


def test_img2img_keeps_size_and_strength(engine: Engine) -> None:
    request = EditRequest(prompt="make it night", seed=5, strength=0.5, steps=4)
    plan = engine.plan_edit(request, png((80, 48)), None)
    assert (plan.mode, plan.size.width, plan.size.height) == ("img2img", 80, 48)
    result = engine.render(plan)
    used = result.data[0].parameters
    assert (used.mode, used.strength, used.width, used.height, used.seed) == ("img2img", 0.5, 80, 48, 5)


def test_inpaint_with_a_mask_file(engine: Engine) -> None:
    grey = Image.new("L", (64, 64), 0)
    grey.paste(255, (0, 0, 32, 32))  # egaku's own masks: white = paint, asked for explicitly
    mask = io.BytesIO()
    grey.save(mask, format="PNG")
    request = EditRequest(prompt="a crown", seed=5, steps=2, mask_format="luminance")
    plan = engine.plan_edit(request, png(), mask.getvalue())
    assert plan.mode == "inpaint" and plan.mask is not None and plan.mask.getpixel((0, 0)) == 255
    assert engine.render(plan).data[0].parameters.mode == "inpaint"
    # The same greyscale file read as OpenAI's mask has no alpha channel: refused, not guessed.
    with pytest.raises(BadRequest, match="alpha channel"):
        engine.plan_edit(EditRequest(prompt="a crown"), png(), mask.getvalue())
    alpha = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    alpha.paste((0, 0, 0, 0), (32, 32, 64, 64))
    openai_mask = io.BytesIO()
    alpha.save(openai_mask, format="PNG")
    plan = engine.plan_edit(EditRequest(prompt="a crown"), png(), openai_mask.getvalue())
    assert plan.mask is not None and (plan.mask.getpixel((0, 0)), plan.mask.getpixel((40, 40))) == (0, 255)


def test_inpaint_repaints_whole_latent_cells_and_keeps_every_pixel_outside_the_mask(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    grey = Image.new("L", (64, 64), 0)
    grey.paste(255, (24, 24, 40, 40))
    mask = io.BytesIO()
    grey.save(mask, format="PNG")
    plan = engine.plan_edit(
        EditRequest(prompt="a crown", seed=5, steps=2, mask_format="luminance"), png(), mask.getvalue()
    )
    pipe = engine._pipe(plan.model, plan.mode)
    given: list[Image.Image] = []
    call = type(pipe).__call__

    def spy(self: object, *args: object, **kwargs: object) -> object:
        given.extend(kwargs["mask_image"])  # type: ignore[arg-type]
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", spy)
    out = pixels(engine.render(plan))
    cell = pipe.vae_scale_factor  # the cells the mask touches, and two rings of cells around them
    low, high = max(0, (24 // cell - 2) * cell), min(64, (39 // cell + 3) * cell)
    assert [m.getbbox() for m in given] == [(low, low, high, high)] and low < 24
    original = np.asarray(Image.open(io.BytesIO(png())), dtype=np.int16)
    outside = np.asarray(grey) == 0
    assert (out[outside] == original[outside]).all()  # the grown rim was painted, then put back exactly
    assert (out[~outside] != original[~outside]).any()


def test_inpaint_with_a_mask_from_words(engine: Engine) -> None:
    request = EditRequest(prompt="a black-haired queen", mask_prompt="the squirrel king", seed=5, steps=2)
    plan = engine.plan_edit(request, png(), None)
    mask = engine.aux.mask(plan.image, "the squirrel king", prompt=plan.prompt)
    assert mask.mode == "L" and mask.size == (64, 64)
    assert engine.render(plan).data[0].parameters.mode == "inpaint"


def test_bad_uploads_are_refused_clearly(engine: Engine) -> None:
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # ~50 KB on disk, 400 MP decoded
    with pytest.raises(BadRequest, match="at most"):
        engine.plan_edit(EditRequest(prompt="x"), bomb.getvalue(), None)
    with pytest.raises(BadRequest, match="damaged or truncated"):
        engine.plan_edit(EditRequest(prompt="x"), png()[:60], None)
    with pytest.raises(BadRequest, match="couldn't read that image"):
        engine.plan_edit(EditRequest(prompt="x"), b"%PDF-1.7 not an image", None)


@pytest.mark.parametrize(("fmt", "magic"), [("webp", b"RIFF"), ("jpeg", b"\xff\xd8\xff")])
def test_output_formats(engine: Engine, fmt: str, magic: bytes) -> None:
    result = engine.render(engine.plan(GenerationRequest(prompt="a fox", seed=1, output_format=fmt)))  # type: ignore[arg-type]
    assert base64.b64decode(result.data[0].b64_json).startswith(magic)
    assert result.output_format == fmt


def test_sd15_family(worker_cache: Path) -> None:
    settings = tiny_worker_settings(worker_cache)
    sd15 = ModelPreset(source="tiny", family="sd15", steps=2, width=64, height=64)
    settings = settings.model_copy(update={"models": {**settings.models, "sd15": sd15}, "default_model": "sd15"})
    engine = Engine(settings)
    long_prompt = " ".join(["a very long prompt"] * 30)
    result = engine.render(engine.plan(GenerationRequest(prompt=long_prompt, seed=2)))
    assert result.data[0].parameters.model == "sd15"
    assert type(engine._pipe("sd15", "generate")).__name__ == "StableDiffusionPipeline"


def test_style_presets_add_words_to_both_prompts(engine: Engine) -> None:
    plan = engine.plan(GenerationRequest(prompt="a fox", negative_prompt="blurry", style="watercolor", seed=1))
    assert plan.prompt == "a fox, watercolour painting, soft washes, paper texture, delicate edges"
    assert plan.negative == "blurry, photo, 3d render"
    assert engine.render(plan).data[0].parameters.style == "watercolor"
    with pytest.raises(ValueError):
        GenerationRequest.model_validate({"prompt": "a fox", "style": "vaporwave"})


def test_preset_scheduler_replaces_the_models_own(worker_cache: Path) -> None:
    settings = tiny_worker_settings(worker_cache)
    dpm = ModelPreset(source="tiny", steps=2, width=64, height=64, scheduler="DPMSolverMultistepScheduler")
    engine = Engine(settings.model_copy(update={"models": {"tiny": dpm}}))
    engine.render(engine.plan(GenerationRequest(prompt="a fox", seed=1)))
    assert type(engine._pipe("tiny", "generate").scheduler).__name__ == "DPMSolverMultistepScheduler"


def test_a_captioner_that_cannot_load_is_named(worker_cache: Path, tmp_path: Path) -> None:
    from worker.errors import WorkerError
    from worker.images import encode_image

    settings = tiny_worker_settings(worker_cache, captioner=str(tmp_path / "no-such-blip"), warmup=False)
    with pytest.raises(WorkerError, match="no-such-blip' could not be loaded"):
        Engine(settings).describe(encode_image(Image.new("RGB", (8, 8))))
