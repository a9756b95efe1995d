"""FLUX.1 Kontext: instruction edits at the plan's size (no resize to ~1024²), region edits with its inpaint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.worker.families.conftest import encoded_images, family_engine, png_of
from tests.worker.test_engine import pixels, png
from worker.engine import Engine
from worker.errors import BadRequest
from worker.protocol import EditRequest, GenerationRequest


@pytest.fixture(scope="module")
def kontext(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return family_engine("flux-kontext", worker_cache, tmp_path_factory.mktemp("kontext"))


def test_an_instruction_edit_reads_the_source_at_its_own_size(kontext: Engine) -> None:
    source = Image.new("RGB", (80, 48), "orange")
    source.paste(Image.new("RGB", (40, 24), "navy"), (0, 0))
    plan = kontext.plan_edit(EditRequest(prompt="a fox in an orange field at night", seed=2, n=2), png_of(source), None)
    assert (plan.mode, plan.strength, plan.size.width, plan.size.height) == ("instruct", None, 80, 48)
    pipe = kontext._pipe("flux-kontext", "instruct")
    assert type(pipe).__name__ == "FluxKontextPipeline"
    seen, hook = encoded_images(pipe)
    try:
        result = kontext.render(plan)
    finally:
        hook.remove()  # type: ignore[attr-defined]
    assert [(d.parameters.mode, d.parameters.width, d.parameters.height) for d in result.data] == [
        ("instruct", 80, 48)
    ] * 2
    expected = pipe.image_processor.preprocess(source, 48, 80)
    assert [tuple(t.shape) for t in seen] == [(1, 3, 48, 80)] * 2  # one per sample; not resized to ~1024²
    assert all(torch.allclose(t, expected, atol=1e-5) for t in seen)  # the source itself reaches Kontext


def test_a_region_edit_by_words_uses_kontext_inpaint(kontext: Engine) -> None:
    request = EditRequest(prompt="a fox wearing a golden crown", mask_prompt="the fox", seed=5, steps=2, strength=0.9)
    plan = kontext.plan_edit(request, png(), None)
    assert plan.mode == "inpaint"
    used = kontext.render(plan).data[0].parameters
    assert (used.mode, used.width, used.height, used.strength) == ("inpaint", 64, 64, 0.9)
    assert type(kontext._pipe("flux-kontext", "inpaint")).__name__ == "FluxKontextInpaintPipeline"


def test_kontext_also_draws_from_text(kontext: Engine) -> None:
    result = kontext.render(kontext.plan(GenerationRequest(prompt="a fox", seed=1)))
    assert pixels(result).shape == (64, 64, 3)
    assert kontext._pipe("flux-kontext", "generate") is kontext._pipe("flux-kontext", "instruct")  # one pipeline


def test_a_size_off_the_16_grid_is_refused(kontext: Engine) -> None:
    with pytest.raises(BadRequest, match="multiples of 16"):
        kontext.plan_edit(EditRequest(prompt="night", size="72x64"), png(), None)
