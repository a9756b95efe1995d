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

from worker.pipelines import choose_placement, load_pipeline
from worker.settings import world_preset
from worker.world.evaluate import edit_coherence, prompt_fidelity
from worker.world.scenes import held_out_scenes

MARGIN = 0.03
# docs/benchmarks.md, 2026-12-04 (colour and position past the 90% goals; shape and edits short of theirs).
RECORDED = {"colour": 0.9387, "shape": 0.4434, "size": 0.9434, "position": 0.9858, "background": 1.0}
RECORDED_EDIT_RATIO = 0.3645
RECORDED_RECOLOURED = 1.0
EDITS = 20
# 100 pictures and 20 edits: about a minute on one idle core, several on a loaded machine.
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


def test_prompt_fidelity_stays_at_the_recorded_figures(pipe: Any) -> None:
    preset = world_preset()
    torch.manual_seed(0)
    measured = prompt_fidelity(pipe, held_out_scenes(), preset.steps, preset.guidance)
    assert measured.objects == sum(len(s.shapes) for s in held_out_scenes())
    for attribute, floor in RECORDED.items():
        assert getattr(measured, attribute) >= floor - MARGIN, (attribute, measured)


def test_a_single_object_edit_stays_coherent(pipe: Any) -> None:
    preset = world_preset()
    measured = edit_coherence(pipe, held_out_scenes()[:EDITS], preset.steps, preset.guidance)
    assert measured.edits == EDITS
    assert measured.ratio <= RECORDED_EDIT_RATIO + MARGIN, measured
    assert measured.recoloured >= RECORDED_RECOLOURED - MARGIN, measured
