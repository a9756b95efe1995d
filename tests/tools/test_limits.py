"""Per-user, per-server and total caps on image jobs, and each server's line."""

from __future__ import annotations

import asyncio

import pytest

from egaku.config import LimitsSettings
from egaku.errors import JobCancelled, TooBusy
from tools.checks.limits import JobLimiter, come_back_in
from tools.service.requests import Waiting


async def hold(
    limiter: JobLimiter, user: str, guild: str | None, gate: asyncio.Event, log: list[str], job_id: str | None = None
) -> None:
    async def told(waiting: Waiting) -> None:
        log.append(f"{user} place {waiting.place}")

    async with limiter.slot(user, guild, job_id=job_id, on_wait=told):
        log.append(f"start {user}")
        await gate.wait()
        log.append(f"end {user}")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_running_and_two_queued_per_user() -> None:
    limiter = JobLimiter(LimitsSettings(per_user_running=1, per_user_queued=2))
    gate, log = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(limiter, "alice", "g", gate, log)) for _ in range(3)]
    await settle()
    assert log == ["start alice", "alice place 1", "alice place 2"]  # one draws, two wait their turn
    with pytest.raises(TooBusy, match="You already have 3 pictures on the way"):
        async with limiter.slot("alice", "g"):
            pass
    async with limiter.slot("bob", "g"):  # others pass alice's waiting jobs
        log.append("bob")
    gate.set()
    await asyncio.gather(*tasks)
    assert log.count("start alice") == 3 and "bob" in log


async def test_past_the_servers_cap_people_wait_in_line_and_move_up() -> None:
    limiter = JobLimiter(LimitsSettings(per_guild=2, total=100, per_user_queued=0, line=3))
    gates = {u: asyncio.Event() for u in "abcdefg"}
    log: list[str] = []
    tasks = {u: asyncio.create_task(hold(limiter, u, "g1", gates[u], log, job_id=f"job-{u}")) for u in "abcde"}
    await settle()
    assert log == ["start a", "start b", "c place 1", "d place 2", "e place 3"]
    with pytest.raises(TooBusy, match=r"This server has 3 pictures waiting in line right now\. .* about \d+ s\."):
        async with limiter.slot("f", "g1"):
            pass
    tasks["g"] = asyncio.create_task(hold(limiter, "g", "other", gates["g"], log))  # another server: no wait
    await settle()
    assert log[-1] == "start g" and limiter.place("job-d") == 2
    log.clear()
    gates["a"].set()
    await settle()
    assert log == ["end a", "start c", "d place 1", "e place 2"]
    assert limiter.cancel("job-d") and not limiter.cancel("job-d") and limiter.place("job-e") == 1
    with pytest.raises(JobCancelled):
        await tasks.pop("d")
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks.values())
    async with limiter.slot("h", "g1"), limiter.slot("i", "g1"):  # every slot was released
        pass


async def test_the_total_cap_makes_every_server_wait() -> None:
    limiter = JobLimiter(LimitsSettings(per_guild=8, total=2, per_user_queued=0))
    gate, log = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(limiter, u, g, gate, log)) for u, g in (("a", "g1"), ("b", "g2"), ("c", None))]
    await settle()
    assert log == ["start a", "start b", "c place 1"]
    gate.set()
    await asyncio.gather(*tasks)
    assert log.count("start c") == 1


async def test_direct_messages_wait_for_the_total_cap_each_in_their_users_own_line() -> None:
    limiter = JobLimiter(LimitsSettings(total=1, line=2, per_user_queued=1))
    gate, log = asyncio.Event(), []
    people = "abcdef"  # more people in DMs than any one line holds
    tasks = [asyncio.create_task(hold(limiter, u, None, gate, log)) for u in people]
    await settle()
    assert log == ["start a", "b place 1", "c place 1", "d place 1", "e place 1", "f place 1"]
    tasks.append(asyncio.create_task(hold(limiter, "b", None, gate, log)))  # b's second waits behind b's first
    await settle()
    assert log[-1] == "b place 2"
    with pytest.raises(TooBusy, match="You already have 2 pictures on the way"):
        async with limiter.slot("b", None):  # a DM's line is bounded by its user's caps
            pass
    gate.set()
    await asyncio.gather(*tasks)
    assert [entry for entry in log if entry.startswith("start")] == [f"start {u}" for u in "abcdefb"]


async def test_a_waiter_that_goes_away_leaves_its_place() -> None:
    limiter = JobLimiter(LimitsSettings(per_guild=1, per_user_queued=0))
    gate, log = asyncio.Event(), []
    first = asyncio.create_task(hold(limiter, "a", "g", gate, log))
    second = asyncio.create_task(hold(limiter, "b", "g", gate, log))
    third = asyncio.create_task(hold(limiter, "c", "g", gate, log))
    await settle()
    second.cancel()
    await settle()
    assert log[-1] == "c place 1"
    gate.set()
    await asyncio.gather(first, third)
    assert "start b" not in log


def test_come_back_in_reads_like_a_person_wrote_it() -> None:
    assert [str(come_back_in(s)) for s in (1, 40, 89, 90, 200)] == ["5 s", "40 s", "89 s", "2 min", "4 min"]
