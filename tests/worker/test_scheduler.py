"""The queue on its own, with a recording runner: fairness, priorities, batching, cancel, bounds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from worker.errors import JobCancelled, QueueBusy
from worker.scheduler import Job, Progress, Scheduler


class Recorder:
    """Runs batches by returning each job's id; records the batches; can hold the first batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, jobs: Sequence[Job[str]], report: Callable[[Job[str], Progress], None]) -> list[str]:
        self.started.set()
        self.gate.wait(5)
        self.batches.append([j.id for j in jobs])
        for step in (1, 2, 3):
            if all(j.cancel_flag.is_set() for j in jobs):
                break
            for job in jobs:
                report(job, Progress("step", {"step": step, "steps": 3}))
        return [j.id for j in jobs]


def job(job_id: str, user: str, key: str | None = None, priority: int = 0) -> Job[str]:
    return Job(id=job_id, user=user, plan=None, key=key or job_id, priority=priority)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def run_all(scheduler: Scheduler[str], jobs: list[Job[str]], recorder: Recorder) -> list[str]:
    recorder.gate.clear()
    blocker = scheduler.submit(job("blocker", "z"))
    scheduler.start()
    await asyncio.to_thread(recorder.started.wait, 5)
    submitted = [scheduler.submit(j) for j in jobs]
    recorder.gate.set()
    await asyncio.gather(*(j.future for j in [blocker, *submitted]))  # type: ignore[misc]
    return [i for batch in recorder.batches[1:] for i in batch]


async def test_users_take_turns(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), max_batch=1, batch_window_s=0)
    jobs = [job("a1", "a"), job("a2", "a"), job("a3", "a"), job("b1", "b"), job("c1", "c"), job("b2", "b")]
    order = await run_all(scheduler, jobs, recorder)
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3"]


async def test_higher_priority_first(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), max_batch=1, batch_window_s=0)
    jobs = [job("low1", "a"), job("high", "b", priority=5), job("low2", "c")]
    assert await run_all(scheduler, jobs, recorder) == ["high", "low1", "low2"]


async def test_same_key_jobs_share_a_batch(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), max_batch=3, batch_window_s=0)
    jobs = [job("x1", "a", "k"), job("y", "b", "other"), job("x2", "c", "k"), job("x3", "d", "k"), job("x4", "e", "k")]
    await run_all(scheduler, jobs, recorder)
    assert recorder.batches[1:] == [["x1", "x2", "x3"], ["y"], ["x4"]]
    assert scheduler.stats.batches == {1: 3, 3: 1}


async def test_cancel_queued_and_running(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), max_batch=1, batch_window_s=0)
    recorder.gate.clear()
    running = scheduler.submit(Job(id="run", user="a", plan=None, key="r", events=asyncio.Queue()))
    queued = scheduler.submit(job("wait", "b"))
    scheduler.start()
    await asyncio.to_thread(recorder.started.wait, 5)
    assert scheduler.position(running) == 0 and scheduler.position(queued) == 1
    assert scheduler.cancel("wait") and scheduler.cancel("run")
    assert not scheduler.cancel("nope")
    recorder.gate.set()
    with pytest.raises(JobCancelled):
        await queued.future  # type: ignore[misc]
    with pytest.raises(JobCancelled):
        await running.future  # type: ignore[misc]
    events = []
    while not running.events.empty():  # type: ignore[union-attr]
        events.append(running.events.get_nowait().kind)  # type: ignore[union-attr]
    assert events == ["queued", "started"]  # stopped before its first step
    assert recorder.batches == [["run"]]
    assert scheduler.stats.cancelled == 2


async def test_full_queue_refuses_with_an_estimate(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), max_queue=2, batch_window_s=0)
    scheduler.submit(job("1", "a"))
    scheduler.submit(job("2", "a"))
    with pytest.raises(QueueBusy) as caught:
        scheduler.submit(job("3", "a"))
    assert caught.value.retry_after_s > 0
    assert scheduler.stats.rejected_full == 1


async def test_same_job_id_is_one_job(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), batch_window_s=0)
    first = scheduler.submit(job("interaction-1", "a"))
    again = scheduler.submit(job("interaction-1", "a"))
    assert again is first
    scheduler.start()
    assert await first.future == "interaction-1"  # type: ignore[misc]
    assert recorder.batches == [["interaction-1"]]


async def test_drain_finishes_queued_work_and_refuses_new(recorder: Recorder) -> None:
    scheduler: Scheduler[str] = Scheduler(recorder, ThreadPoolExecutor(1), max_batch=1, batch_window_s=0)
    jobs = [scheduler.submit(job(str(i), "a")) for i in range(3)]
    scheduler.start()
    await scheduler.drain()
    assert all(j.future.done() and j.future.result() == j.id for j in jobs)  # type: ignore[union-attr]
    with pytest.raises(QueueBusy):
        scheduler.submit(job("late", "a"))
