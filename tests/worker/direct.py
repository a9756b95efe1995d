"""Reference pictures: a second copy of a preset's pipeline, called directly through diffusers' own API.

An engine feature (a LoRA at a scale, a taught word, a negative prompt) is proved by drawing the same
picture without the engine: the mechanism applied with diffusers' documented call (`fuse_lora`,
`load_textual_inversion`, `negative_prompt=`) on a pipeline the engine never touched, at the same seed,
and the feature must move the picture far more than the tolerance, so that the reference tells them apart.
Pictures are compared as the latents the VAE decodes: the tiny transformer models turn even a large
change of latents into a few pixel levels, which a pixel tolerance could not tell from rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from worker.engine import Engine
from worker.families.base import ModeInputs
from worker.pipelines import Placement
from worker.plan import Plan
from worker.protocol import AdapterChoice, GenerationRequest

# The engine passes lists (prompts, generators) where a direct call passes one, and a fused LoRA is one
# matmul where the engine's is two: the same picture's latents may differ in the last bits of a float
# (seen: up to 4e-5 on latents of magnitude 25). The effects proved here move them by 1e-2 or more.
TOLERANCE = 1e-4
# The same, in pixel levels, for pictures that come back as PNGs.
PIXEL_TOLERANCE = 2


def fresh_pipeline(engine: Engine, model: str) -> Any:
    """A second copy of a preset's pipeline, loaded the way the engine loads it, that the engine never touches."""
    preset = engine._settings.models[model]
    return engine._loader(preset, Placement(device="cpu", dtype=torch.float32), engine.cache_dir)


def load_textual_inversion(pipe: Any, path: Path, token: str) -> None:
    """A textual-inversion file loaded with diffusers' own call: SDXL's holds one vector set per encoder."""
    vectors = load_file(str(path))
    if "clip_g" not in vectors:
        pipe.load_textual_inversion(str(path), token=token)
        return
    for key, encoder, tokenizer in (
        ("clip_l", "text_encoder", "tokenizer"),
        ("clip_g", "text_encoder_2", "tokenizer_2"),
    ):
        pipe.load_textual_inversion(
            vectors[key], token=token, text_encoder=getattr(pipe, encoder), tokenizer=getattr(pipe, tokenizer)
        )


def plain_call(plan: Plan, **extra: Any) -> dict[str, Any]:
    """A direct pipeline call's arguments for the plan's picture: prompt, steps, guidance and the mode's
    own arguments (size, source image), plus `extra`."""
    inputs = ModeInputs(plan.size, 1, plan.image, plan.mask, plan.strength)
    return {
        "prompt": plan.prompt,
        "num_inference_steps": plan.steps,
        plan.family.guidance_argument: plan.guidance,
        **plan.family.mode_kwargs(plan.mode, inputs),
        **extra,
    }


def decoded(pipe: Any, run: Callable[[], object]) -> torch.Tensor:
    """The latents the pipeline's VAE decoded last while `run` ran: the picture, before it became pixels."""
    seen: list[torch.Tensor] = []
    hook = pipe.vae.decoder.register_forward_pre_hook(lambda _module, args: seen.append(args[0].clone()))
    try:
        run()
    finally:
        hook.remove()
    return seen[-1]


def engine_latents(engine: Engine, plan: Plan) -> torch.Tensor:
    """The latents of the plan's (first) picture, as the engine renders it."""
    return decoded(engine._pipe(plan.model, plan.mode), lambda: engine.render(plan))[:1]


def direct_call(pipe: Any, seed: int, call: dict[str, Any]) -> Any:
    """The pipeline's output when called directly (no engine) with `call` at `seed`."""
    with torch.inference_mode():
        return pipe(generator=torch.Generator(device="cpu").manual_seed(seed), **call)


def direct_latents(pipe: Any, seed: int, call: dict[str, Any]) -> torch.Tensor:
    """The latents of the picture a pipeline draws when called directly with `call` at `seed`."""
    return decoded(pipe, lambda: direct_call(pipe, seed, call))


def direct_pixels(pipe: Any, seed: int, call: dict[str, Any]) -> np.ndarray:
    """The same picture as pixels, for a picture that came back over HTTP (where no latents can be had)."""
    return np.asarray(direct_call(pipe, seed, call).images[0].convert("RGB"), dtype=np.int16)


def assert_same_picture(drawn: torch.Tensor, reference: torch.Tensor) -> None:
    """The engine's picture is the reference's, up to the last bits of a float."""
    torch.testing.assert_close(drawn, reference, rtol=0, atol=TOLERANCE)


def assert_changed(before: torch.Tensor, after: torch.Tensor) -> None:
    """The mechanism moved the picture by far more than the tolerance: the reference tells the two apart."""
    assert float((before - after).abs().max()) > 10 * TOLERANCE


def assert_lora_as_fused(
    engine: Engine, plain: Plan, with_lora: Plan, lora: AdapterChoice, **extra: Any
) -> torch.Tensor:
    """`with_lora` (the plain plan plus `lora`) draws what diffusers draws with that LoRA fused at its scale
    (`fuse_lora`), and the plain plan the unchanged pipeline's picture, before and after; the drawn latents.

    `extra` are the prompt arguments the family adds to its call (T5's length, Qwen's empty negative).
    """
    assert with_lora.adapters == (lora,)
    before = engine_latents(engine, plain)
    drawn = engine_latents(engine, with_lora)
    reference = fresh_pipeline(engine, plain.model)
    call, seed = plain_call(plain, **extra), plain.seeds[0]
    assert_same_picture(before, direct_latents(reference, seed, call))
    spec = engine._settings.adapters[lora.name]
    reference.load_lora_weights(spec.source, weight_name=spec.weight_name)
    reference.fuse_lora(lora_scale=lora.scale)
    assert_same_picture(drawn, direct_latents(reference, seed, call))
    assert_changed(before, drawn)
    assert_same_picture(engine_latents(engine, plain), before)  # switched off again for requests without it
    return drawn


def assert_word_as_loaded(engine: Engine, plain: Plan, with_word: Plan, path: Path, token: str) -> None:
    """`with_word` (the plain plan, with the word's file) draws what diffusers draws with that file loaded
    (`load_textual_inversion`), which the plain plan, drawn first, does not."""
    before = engine_latents(engine, plain)
    drawn = engine_latents(engine, with_word)
    reference = fresh_pipeline(engine, plain.model)
    load_textual_inversion(reference, path, token)
    assert_same_picture(drawn, direct_latents(reference, plain.seeds[0], plain_call(plain)))
    assert_changed(before, drawn)


def assert_negative_as_direct(engine: Engine, request: GenerationRequest, **extra: Any) -> None:
    """A request with a negative prompt draws what the pipeline draws when called with it (`negative_prompt=`),
    and without it what the pipeline draws without one. `extra` as for `assert_lora_as_fused`."""
    assert request.negative_prompt is not None
    plain = engine.plan(request.model_copy(update={"negative_prompt": None}))
    before = engine_latents(engine, plain)
    drawn = engine_latents(engine, engine.plan(request))
    reference = fresh_pipeline(engine, plain.model)
    call, seed = plain_call(plain, **extra), plain.seeds[0]
    assert_same_picture(before, direct_latents(reference, seed, call))
    assert_same_picture(drawn, direct_latents(reference, seed, {**call, "negative_prompt": request.negative_prompt}))
    assert_changed(before, drawn)
