"""A job asked for again by its id: attached while it runs, answered from its kept result once done, never redrawn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from tests.conftest import serve, tiny_worker_settings
from tests.worker.test_server import _Gated
from worker.engine import Engine
from worker.http import WorkerServer
from worker.kept import KeptResults
from worker.scheduler import Job, Progress, Scheduler, follow


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_results_are_kept_for_their_time_and_within_their_size() -> None:
    clock = Clock()
    kept: KeptResults[str] = KeptResults(keep_s=60, max_bytes=10, size_of=len, clock=clock)
    kept.put("a", "1234")
    kept.put("b", "5678")
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == ("1234", "5678", None)
    kept.put("c", "abcd")  # 12 bytes: the oldest goes
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (None, "5678", "abcd")
    kept.put("huge", "x" * 11)  # larger than the whole store: not kept, nothing else lost
    assert (kept.get("huge"), len(kept)) == (None, 2)
    clock.now += 61
    assert (kept.get("b"), kept.get("c"), len(kept)) == (None, None, 0)
    assert kept.hits == 4


class Counting:
    """A runner that answers each job with its id and records which it drew."""

    def __init__(self) -> None:
        self.drawn: list[str] = []

    def __call__(self, jobs: Sequence[Job[str]], report: Callable[[Job[str], Progress], None]) -> list[str]:
        self.drawn.extend(j.id for j in jobs)
        for job in jobs:
            report(job, Progress("step", {"step": 1, "steps": 1}))
        return [f"picture of {j.id}" for j in jobs]


async def test_a_repeated_id_attaches_while_queued_and_is_answered_from_the_store_once_done() -> None:
    runner = Counting()
    kept: KeptResults[str] = KeptResults(keep_s=60, max_bytes=1 << 20, size_of=len)
    scheduler: Scheduler[str] = Scheduler(runner, ThreadPoolExecutor(1), max_batch=1, batch_window_s=0, kept=kept)
    first = scheduler.submit(Job(id="j1", user="a", plan=None, key="k", events=asyncio.Queue()))
    # The first client goes away; a second one asks for the same id before the job has run.
    listener: asyncio.Queue[Progress] = asyncio.Queue()
    again = scheduler.submit(Job(id="j1", user="a", plan=None, key="k", events=listener))
    assert again is first and first.events is listener
    scheduler.start()
    seen = [event.kind async for event in follow(again)]
    assert seen == ["queued", "started", "step"]
    assert await again.future == "picture of j1"  # type: ignore[misc]
    late = scheduler.submit(Job(id="j1", user="a", plan=None, key="k", events=asyncio.Queue()))
    assert late is not first and await late.future == "picture of j1"  # type: ignore[misc]
    assert runner.drawn == ["j1"] and kept.hits == 1 and scheduler.depth == 0


async def test_a_failed_or_cancelled_job_is_not_kept() -> None:
    runner = Counting()
    kept: KeptResults[str] = KeptResults(keep_s=60, max_bytes=1 << 20, size_of=len)
    scheduler: Scheduler[str] = Scheduler(runner, ThreadPoolExecutor(1), max_batch=1, batch_window_s=0, kept=kept)
    gone = scheduler.submit(Job(id="j2", user="a", plan=None, key="k"))
    scheduler.cancel("j2")
    assert gone.future is not None and gone.future.done() and len(kept) == 0
    scheduler.start()
    again = scheduler.submit(Job(id="j2", user="a", plan=None, key="k"))
    assert await again.future == "picture of j2" and runner.drawn == ["j2"]  # type: ignore[misc]


async def read_events(resp: aiohttp.ClientResponse) -> list[tuple[str, dict]]:
    raw = (await resp.read()).decode()
    events = []
    for block in raw.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


async def test_a_client_that_leaves_a_named_job_gets_it_by_id_without_a_second_render(
    engine: Engine, worker_cache: Path
) -> None:
    """The bot is killed mid-render: its job runs on, and the restarted bot's repeated request gets the same picture."""
    gated = _Gated(engine)
    server = WorkerServer(gated, tiny_worker_settings(worker_cache, max_batch=1), token=None)  # type: ignore[arg-type]
    runner, url = await serve(server.app())
    body = {"prompt": "a fox", "seed": 3, "job_id": "kept-1", "stream": True, "stream_format": "egaku"}
    try:
        await asyncio.sleep(0.2)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url + "/v1/images/generations", json=body) as resp,
        ):
            await resp.content.readline()  # the job is queued; then the client vanishes mid-stream
        while not server.scheduler.find_running():
            await asyncio.sleep(0.01)
        (job,) = server.scheduler.find_running()
        first_listener = job.events
        async with aiohttp.ClientSession() as session:
            attach = asyncio.create_task(session.post(url + "/v1/images/generations", json=body))
            while job.events is first_listener:  # until the repeated request has attached
                await asyncio.sleep(0.01)
            gated.gate.set()
            async with await attach as resp:
                attached = await read_events(resp)
            async with session.post(url + "/v1/images/generations", json=body) as resp:
                kept = await read_events(resp)
            async with session.get(url + "/metrics") as resp:
                metrics = await resp.text()
    finally:
        gated.gate.set()
        await runner.cleanup()
    assert attached[0] == ("started", {"job_id": "kept-1", "batch_size": 1, "attached": True})
    assert attached[-1][0] == "completed" and kept == [attached[-1]]  # the same picture, byte for byte
    assert attached[-1][1]["data"][0]["seed"] == 3
    assert 'egaku_jobs_total{outcome="completed"} 1' in metrics  # drawn once
