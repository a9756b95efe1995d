"""Per-user, per-guild and total caps on image jobs."""

from __future__ import annotations

import asyncio

import pytest

from egaku.config import LimitsSettings
from egaku.errors import TooBusy
from tools.checks.limits import JobLimiter


async def hold(limiter: JobLimiter, user: str, guild: str | None, gate: asyncio.Event, log: list[str]) -> None:
    async with limiter.slot(user, guild):
        log.append(f"start {user}")
        await gate.wait()
        log.append(f"end {user}")


async def test_one_running_and_two_queued_per_user() -> None:
    limiter = JobLimiter(LimitsSettings(per_user_running=1, per_user_queued=2))
    gate, log = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(limiter, "alice", "g", gate, log)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert log == ["start alice"]  # one draws, two wait their turn
    with pytest.raises(TooBusy, match="You already have 3 pictures on the way"):
        async with limiter.slot("alice", "g"):
            pass
    async with limiter.slot("bob", "g"):  # others are not held up by alice's queue
        log.append("bob")
    gate.set()
    await asyncio.gather(*tasks)
    assert log.count("start alice") == 3 and "bob" in log


async def test_guild_and_total_caps() -> None:
    limiter = JobLimiter(LimitsSettings(per_guild=2, total=3, per_user_queued=0))
    gate, log = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(limiter, u, "g1", gate, log)) for u in ("a", "b")]
    await asyncio.sleep(0.01)
    with pytest.raises(TooBusy, match="This server has a lot of pictures"):
        async with limiter.slot("c", "g1"):
            pass
    tasks.append(asyncio.create_task(hold(limiter, "d", "g2", gate, log)))
    await asyncio.sleep(0.01)
    with pytest.raises(TooBusy, match=r"I'm very busy right now. Please try again in about \d+ s."):
        async with limiter.slot("e", None):
            pass
    gate.set()
    await asyncio.gather(*tasks)
    async with limiter.slot("e", "g1"):  # everything was released
        pass
