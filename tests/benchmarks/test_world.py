"""The painter benchmark's training paragraph says how phase 4 was restarted, from the weights' own record."""

from __future__ import annotations

from benchmarks.world import polished


def test_the_restarts_are_told_with_each_rounds_minutes() -> None:
    curve = [{"step": 0, "loss": 0.3}, {"step": 5999, "loss": 0.2}]
    once = {"config": {"polish_lr": 2e-4}, "seconds": {"polish": 2359.9}, "polish_curve": curve}
    assert polished(once) == ", then restarted 39.3 min (6000 steps, lr 0.0002)"
    twice = {
        "config": {"polish_lr": 2e-4, "restarts": 2},
        "seconds": {"polish": 2359.9, "polish-2": 1695.3},
        "polish_curve": [*curve, *curve],
    }
    assert polished(twice) == ", then restarted twice 39.3 + 28.3 min (6000 steps each, lr 0.0002)"
    assert polished({"config": {"polish_lr": 2e-4}, "seconds": {}, "polish_curve": []}) == ""
