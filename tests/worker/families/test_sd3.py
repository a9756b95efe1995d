"""SD3.5 specifics: img2img and inpaint, and the negative prompt reaches the encoders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.worker.direct import assert_negative_as_direct
from tests.worker.families.conftest import family_engine
from tests.worker.test_engine import png
from worker.engine import Engine
from worker.families.sd3 import SD3
from worker.protocol import EditRequest, GenerationRequest


@pytest.fixture(scope="module")
def sd3(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return family_engine("sd3", worker_cache, tmp_path_factory.mktemp("sd3"))


def test_img2img_and_inpaint_keep_the_size(sd3: Engine) -> None:
    img2img = sd3.plan_edit(EditRequest(prompt="a fox at night", seed=5, strength=0.5, steps=4), png((80, 48)), None)
    inpaint = sd3.plan_edit(EditRequest(prompt="a crown", mask_prompt="the fox", seed=5, steps=2), png(), None)
    for plan, mode, size in ((img2img, "img2img", (80, 48)), (inpaint, "inpaint", (64, 64))):
        used = sd3.render(plan).data[0].parameters
        assert (used.mode, used.width, used.height) == (mode, *size)
        assert type(sd3._pipe("sd3", mode)).__name__ == SD3.pipelines[mode]


def test_the_negative_prompt_draws_what_diffusers_draws_with_it(sd3: Engine) -> None:
    request = GenerationRequest(prompt="a fox", negative_prompt="blurry, dark", seed=4)
    assert sd3.render(sd3.plan(request)).data[0].parameters.negative_prompt == "blurry, dark"
    assert_negative_as_direct(sd3, request, max_sequence_length=512)  # T5 reads up to its limit
