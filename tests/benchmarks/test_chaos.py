"""The chaos run, short: about fifty requests while every fault strikes once; nothing lost, nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos import Plan, run

SHORT = Plan(
    jobs=48, users=8, guild_users=4, worker_kills=(0.25,), bot_kills=(0.5,), storms_429=(0.15,), storms_5xx=(0.7,),
    storm_size=8, timeout_s=480,
)  # fmt: skip


@pytest.mark.timeout(900)
async def test_a_short_chaos_run_loses_and_duplicates_nothing(worker_cache: Path, tmp_path: Path) -> None:
    figures = await run(SHORT, worker_cache, tmp_path)
    assert dict(figures.faults) == {"worker kill": 1, "bot kill": 1, "429 storm": 1, "5xx storm": 1}
    assert (figures.lost, figures.lost_ids) == (0, [])
    assert (figures.duplicated, figures.duplicated_ids) == (0, [])
    assert figures.pictures + figures.failures == SHORT.jobs
    assert figures.pictures == SHORT.jobs  # every fault is ridden out: no request even ends in a failure
    assert figures.renders >= SHORT.jobs
