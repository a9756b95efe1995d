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
    squares = {"squares_weight": 2.0, "squares_from": 3}
    assert polished({**twice, "config": {**twice["config"], **squares}}) == polished(twice)  # no third round
    thrice = {
        "config": {"polish_lr": 2e-4, "restarts": 3, **squares},
        "seconds": {"polish": 2359.9, "polish-2": 1695.3, "polish-3": 2433.1},
        "polish_curve": [*curve, *curve, *curve],
    }
    assert polished(thrice) == (
        ", then restarted 3 times 39.3 + 28.3 + 40.6 min (6000 steps each, lr 0.0002; from round 3 on, a scene drawn"
        " with weight 1 + 2.0 x its squares)"
    )
