"""The shipped weights, judged on the 100 held-back captions: a regression below the recorded figures fails.

The floors are docs/benchmarks.md's figures (benchmarks/world.py, the same functions) less a small
margin for platform-dependent float rounding; they are records to defend, not the goals.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import tiny_worker_settings
from training.world.edits import edit_accuracy, world_edits
from training.world.evaluate import edit_coherence, pipeline_inpaint, prompt_fidelity, worker_inpaint
from training.world.scenes import held_out_scenes
from worker.engine import Engine
from worker.pipelines import choose_placement, load_pipeline
from worker.settings import world_preset

MARGIN = 0.03
# docs/benchmarks.md, 2026-12-07: phase 4 restarted twice for 6,000 steps, phase 5 again, UniPC in the preset: shape
# 90.1%, squares 53 of 69 (90.6% after one restart: one object more here, but 178 squares of 254 over 400 scenes against
# the second's 199; 89.1% with phase 5 on phase 4 alone, 84.9% before phase 5, 65.6% without phase 4).
RECORDED = {"colour": 1.0, "shape": 0.9009, "size": 1.0, "position": 1.0, "background": 1.0}
RECORDED_EDIT_RATIO = 0.017
# Every recolour of these 20 reads its new colour since phase 4; the floor stays where the weights before it
# were (one missed: a small triangle asked red, drawn orange), so that one edit's float noise cannot fail it.
RECORDED_RECOLOURED = 0.95
RECORDED_WORKER_RECOLOURED = 0.95
EDITS = 20
# Chat edits (the new caption and the words; the world masker finds the region): 10 of each of the 7 kinds,
# the benchmark's whole set: 2 of each swung the share by a whole edit in 14 either way.
CHAT_PER_KIND = 10
# docs/benchmarks.md, 2026-12-07: 88.6% of these 70 chat edits right with phase 4 restarted twice (85.7% with one
# restart, and with phase 5 alone; 80.0% without phase 5, 70.0% with 3,000 steps of phase 4).
RECORDED_CHAT_RIGHT = 0.886
# 100 pictures, 20 edits and 70 chat edits: about two minutes on one idle core, several on a loaded machine.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def pipe() -> Iterator[Any]:
    # One thread, as the benchmark measured: two threads on a busy 2-core machine run several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache:
        loaded = load_pipeline(world_preset(), choose_placement("cpu"), Path(cache))
    yield loaded
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(pipe: Any, worker_cache: Path) -> Engine:
    """The worker's engine serving the same shipped preset (one thread, from the pipe fixture)."""
    world = Engine(tiny_worker_settings(worker_cache, models={"world": world_preset()}, default_model="world"))
    world.load()
    return world


def test_prompt_fidelity_stays_at_the_recorded_figures(pipe: Any) -> None:
    preset = world_preset()
    torch.manual_seed(0)
    measured = prompt_fidelity(pipe, held_out_scenes(), preset.steps, preset.guidance)
    assert measured.objects == sum(len(s.shapes) for s in held_out_scenes())
    for attribute, floor in RECORDED.items():
        assert getattr(measured, attribute) >= floor - MARGIN, (attribute, measured)


def test_a_single_object_edit_through_the_worker_leaves_everything_else_alone(pipe: Any, engine: Engine) -> None:
    """The edit users get (/v1/images/edits, the bot's "make the circle green"): nothing outside the mask moves."""
    preset = world_preset()
    measured = edit_coherence(pipe, held_out_scenes()[:EDITS], preset.steps, preset.guidance, worker_inpaint(engine))
    assert measured.edits == EDITS
    assert measured.outside == 0.0 and measured.inside > 30, measured
    assert measured.ratio < 0.2, measured
    assert measured.recoloured >= RECORDED_WORKER_RECOLOURED - MARGIN, measured


def test_diffusers_inpaint_alone_stays_at_its_recorded_coherence(pipe: Any) -> None:
    preset = world_preset()
    inpaint = pipeline_inpaint(pipe, preset.steps, preset.guidance)
    measured = edit_coherence(pipe, held_out_scenes()[:EDITS], preset.steps, preset.guidance, inpaint)
    assert measured.edits == EDITS
    assert measured.ratio <= RECORDED_EDIT_RATIO + MARGIN, measured
    assert measured.recoloured >= RECORDED_RECOLOURED - MARGIN, measured


def test_chat_edits_stay_at_the_recorded_figures(engine: Engine) -> None:
    """ "Make the circle blue", as the chat sends it: the change read right, the rest unchanged, little else moved."""
    measured = edit_accuracy(engine, world_edits(held_out_scenes(), CHAT_PER_KIND))
    assert measured.edits == 7 * CHAT_PER_KIND
    assert measured.right >= RECORDED_CHAT_RIGHT - MARGIN, measured
    assert measured.ratio < 0.2, measured
