"""FLUX.1 specifics: packed latents previewed correctly, img2img and inpaint, no negative prompt, schnell's limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.worker.families.conftest import family_engine
from tests.worker.test_engine import as_job, png
from worker.engine import Engine
from worker.errors import BadRequest
from worker.families.flux import Flux
from worker.protocol import EditRequest, GenerationRequest, Size


@pytest.fixture(scope="module")
def flux(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return family_engine("flux", worker_cache, tmp_path_factory.mktemp("flux"))


def test_packed_latents_unpack_as_diffusers_does() -> None:
    from diffusers import FluxPipeline

    packed = torch.randn(1, 4 * 6, 64)  # 4x6 tokens of 2x2 patches of 16 channels: a 48x80 px image at VAE factor 2
    expected = FluxPipeline._unpack_latents(packed, height=32, width=48, vae_scale_factor=4)[0]
    assert torch.equal(Flux().latent_image(packed[0], Size(width=48, height=32)), expected)


def test_img2img_and_inpaint_keep_the_size(flux: Engine) -> None:
    img2img = flux.plan_edit(EditRequest(prompt="a fox at night", seed=5, strength=0.5, steps=4), png((80, 48)), None)
    inpaint = flux.plan_edit(EditRequest(prompt="a crown", mask_prompt="the fox", seed=5, steps=2), png(), None)
    for plan, mode, size in ((img2img, "img2img", (80, 48)), (inpaint, "inpaint", (64, 64))):
        used = flux.render(plan).data[0].parameters
        assert (used.mode, used.width, used.height) == (mode, *size)
        assert type(flux._pipe("flux", mode)).__name__ == Flux.pipelines[mode]


def test_the_negative_prompt_is_dropped_and_says_so(flux: Engine) -> None:
    plan = flux.plan(GenerationRequest(prompt="a fox", negative_prompt="blurry", style="watercolor", seed=1))
    assert plan.negative is None
    assert flux.render(plan).data[0].parameters.negative_prompt is None


def test_a_size_off_the_16_grid_is_refused(flux: Engine) -> None:
    with pytest.raises(BadRequest, match="model 'flux' needs width and height in multiples of 16"):
        flux.plan(GenerationRequest(prompt="a fox", size="72x64"))


def test_schnell_reads_256_tokens(worker_cache: Path, tmp_path: Path) -> None:
    schnell = family_engine("flux", worker_cache, tmp_path, prompt_tokens=256)
    plan = schnell.plan(GenerationRequest(prompt=" ".join(["fox"] * 80), seed=1))  # 80 * 3 + 1 = 241 tokens
    schnell.render(plan)
    over = schnell.plan(GenerationRequest(prompt=" ".join(["fox"] * 90), seed=1))
    (outcome,) = schnell.run_batch([as_job(over, "o")], lambda j, e: None)
    assert isinstance(outcome, BadRequest) and "reads at most 256 (its T5 limit)" in outcome.message
