"""IP-Adapter on the tiny SD1.5 and SDXL presets: a tiny adapter and CLIP vision encoder built in code, loaded with
the preset; every reference reaches the image encoder in order; one past the limit is a 400; subject and style
strengths; a request without references draws what the preset draws without an adapter."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch

from tests.conftest import tiny_worker_settings
from tests.worker.direct import (
    assert_changed,
    assert_same_picture,
    direct_latents,
    engine_latents,
    fresh_pipeline,
    plain_call,
)
from tests.worker.families.conftest import pictures, png_of
from tests.worker.test_engine import pixels
from worker.engine import Engine
from worker.errors import BadRequest, ModelUnavailable
from worker.pipelines import check_preset
from worker.protocol import EditRequest, GenerationRequest, TeachRequest
from worker.settings import IPAdapterSpec, ModelPreset

# The tiny UNet's only up block with attention has two transformer layers: the style reaches the second.
STYLE_BLOCKS = {"up": {"block_0": [0.0, 1.0]}}
FAMILIES = ("sd15", "sdxl")
T = TypeVar("T")


@pytest.fixture(scope="module")
def engine(worker_cache: Path) -> Engine:
    """Each family twice: plain, and with a tiny IP-Adapter taking 2 references."""
    adapter = IPAdapterSpec(source="tiny", max_references=2, style_blocks=STYLE_BLOCKS)
    models = {}
    for family in FAMILIES:
        plain = ModelPreset(source="tiny", family=family, steps=2, guidance=5.0, width=64, height=64,
                            max_pixels=128 * 128)  # fmt: skip
        models[family] = plain
        models[f"{family}-ip"] = plain.model_copy(update={"ip_adapter": adapter})
    return Engine(tiny_worker_settings(worker_cache, warmup=True, models=models, default_model="sd15"))


def encoded(*made: Any) -> list[str]:
    """Pictures as a generation's `references`."""
    return [base64.b64encode(png_of(p)).decode() for p in made]


def encoder_inputs(pipe: Any, run: Callable[[], T]) -> tuple[T, list[torch.Tensor]]:
    """What `run` returns, and the pixels the CLIP image encoder got, call by call."""
    seen: list[torch.Tensor] = []
    hook = pipe.image_encoder.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(args[0] if args else kwargs["pixel_values"]), with_kwargs=True
    )
    try:
        return run(), seen
    finally:
        hook.remove()


def ip_scales(pipe: Any) -> dict[str, float]:
    """Each IP-Adapter attention processor's strength, by name."""
    return {name: p.scale[0] for name, p in pipe.unet.attn_processors.items() if hasattr(p, "to_k_ip")}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_reference_reaches_the_image_encoder_in_order(engine: Engine, family: str) -> None:
    cat, hat = pictures((64, 64), (96, 64))
    plan = engine.plan(GenerationRequest(prompt="a cat in a hat", model=f"{family}-ip", seed=1, n=2,
                                         references=encoded(cat, hat)))  # fmt: skip
    assert (plan.mode, plan.reference_role, plan.reference_scale, plan.input_images) == ("generate", "subject", 0.6, 2)
    pipe = engine._pipe(f"{family}-ip", "generate")
    result, seen = encoder_inputs(pipe, lambda: engine.render(plan))
    expected = pipe.feature_extractor([cat, hat], return_tensors="pt").pixel_values
    assert len(seen) == 1 and torch.equal(seen[0], expected)  # both, in order, in one pass
    assert set(ip_scales(pipe).values()) == {0.6}  # a subject reaches every block
    used = result.data[0].parameters
    assert (used.references, used.reference_role, used.reference_scale) == (2, "subject", 0.6)
    assert len(result.data) == 2  # the embeddings are the batch's: two images, one generator each


@pytest.mark.parametrize("family", FAMILIES)
def test_one_past_the_limit_is_a_400_on_new_pictures_and_edits(engine: Engine, family: str) -> None:
    three = encoded(*pictures((64, 64), (64, 64), (64, 64)))
    with pytest.raises(BadRequest) as caught:
        engine.plan(GenerationRequest(prompt="a cat", model=f"{family}-ip", references=three))
    assert (caught.value.param, caught.value.message) == (
        "references",
        f"model '{family}-ip' ({family}) reads at most 2 reference pictures; got 3",
    )
    source = png_of(pictures((64, 64))[0])
    with pytest.raises(BadRequest) as caught:
        engine.plan_edit(EditRequest(prompt="a cat", model=f"{family}-ip"), source, None, extra_images=[source] * 3)
    assert caught.value.message == (
        f"model '{family}-ip' ({family}) reads at most 3 pictures in one edit, the edited one first; got 4"
    )
    with pytest.raises(BadRequest) as caught:
        engine.plan(GenerationRequest(prompt="a cat", model=family, references=three[:1]))
    assert caught.value.message == f"model '{family}' ({family}) draws nothing from reference pictures"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_request_without_references_draws_what_the_preset_draws_without_an_adapter(
    engine: Engine, family: str
) -> None:
    with_adapter = engine.render(engine.plan(GenerationRequest(prompt="a fox", model=f"{family}-ip", seed=7)))
    assert set(ip_scales(engine._pipe(f"{family}-ip", "generate")).values()) == {0.0}
    without = engine.render(engine.plan(GenerationRequest(prompt="a fox", model=family, seed=7)))
    assert np.abs(pixels(with_adapter) - pixels(without)).max() <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_a_reference_steers_the_picture_as_diffusers_own_ip_adapter_call_does(engine: Engine, family: str) -> None:
    """The engine's picture with a reference is diffusers' own call with `ip_adapter_image` at the preset's
    subject strength, on a pipeline loaded the same way that the engine never touched."""
    model = f"{family}-ip"
    plain = engine.plan(GenerationRequest(prompt="a fox", model=model, seed=7))
    referenced = engine.plan(plain_request := GenerationRequest(prompt="a fox", model=model, seed=7,
                                                                references=encoded(*pictures((64, 64)))))  # fmt: skip
    assert plain_request.references and referenced.reference_scale == 0.6
    before = engine_latents(engine, plain)
    drawn = engine_latents(engine, referenced)
    reference = fresh_pipeline(engine, model)
    reference.set_ip_adapter_scale(0.6)
    call = plain_call(referenced, ip_adapter_image=[list(referenced.references)])
    assert_same_picture(drawn, direct_latents(reference, 7, call))
    assert_changed(before, drawn)


def test_a_style_reaches_only_the_style_blocks_and_fidelity_and_scale_set_the_strength(engine: Engine) -> None:
    style = encoded(*pictures((64, 64)))
    request = GenerationRequest(prompt="a fox", model="sdxl-ip", seed=2, references=style, reference_role="style")
    engine.render(engine.plan(request))
    scales = ip_scales(engine._pipe("sdxl-ip", "generate"))
    assert {n: s for n, s in scales.items() if s} == {
        "up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor": 1.0
    }
    assert engine.plan(request.model_copy(update={"reference_scale": 0.4})).reference_scale == 0.4
    edit = EditRequest(prompt="a fox", model="sdxl-ip", input_fidelity="high")
    source = png_of(pictures((64, 64))[0])
    assert engine.plan_edit(edit, source, None, extra_images=[source]).reference_scale == 1.0  # subject 0.6 raised
    low = edit.model_copy(update={"input_fidelity": "low"})
    assert engine.plan_edit(low, source, None, extra_images=[source]).reference_scale == 0.6


def test_an_edit_redraws_the_first_picture_and_reads_the_others_as_references(engine: Engine) -> None:
    source, hat = pictures((64, 64), (64, 96))
    plan = engine.plan_edit(EditRequest(prompt="the fox in the hat", model="sd15-ip", seed=3, strength=0.7),
                            png_of(source), None, extra_images=[png_of(hat)])  # fmt: skip
    assert (plan.mode, plan.image is not None, len(plan.references)) == ("img2img", True, 1)
    pipe = engine._pipe("sd15-ip", "img2img")
    result, seen = encoder_inputs(pipe, lambda: engine.render(plan))
    assert torch.equal(seen[0], pipe.feature_extractor([hat], return_tensors="pt").pixel_values)
    assert (result.data[0].parameters.mode, result.data[0].parameters.references) == ("img2img", 1)


def test_a_word_can_still_be_taught_on_an_ip_adapter_preset(engine: Engine) -> None:
    made = [png_of(p) for p in pictures((64, 64), (64, 64), (64, 64))]
    trainer = engine.trainer(engine.plan_teach(TeachRequest(token="<cat>", model="sd15-ip", steps=2, seed=1), made))
    trainer.run(2)
    assert trainer.step == 2 and trainer.loss is not None


def test_a_family_without_ip_adapters_refuses_one_at_start_up() -> None:
    preset = ModelPreset(source="tiny", family="flux", ip_adapter=IPAdapterSpec(source="tiny"))
    with pytest.raises(ModelUnavailable) as caught:
        check_preset("fast", preset)
    assert caught.value.message == (
        "model preset 'fast': a flux model takes no IP-Adapter (ip_adapter); these do: sdxl, sd15"
    )
