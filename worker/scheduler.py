"""The worker's queue: bounded, fair across users, batching, cancellable. Torch-free.

Jobs wait in one queue per user. The next job comes from the highest priority
that has work, and users take turns round-robin within a priority. When the
next job is picked, queued jobs of other users with the same batch key (model,
size, steps, guidance...) join it, up to `max_batch`, within `batch_window_s`.
A batch runs in one executor thread, so the event loop never blocks and the GPU
sees one batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from worker.errors import JobCancelled, QueueBusy
from worker.kept import KeptResults
from worker.measures import Histogram

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass
class Progress:
    """One event on a job's progress stream."""

    kind: str  # "queued" | "started" | "step" | "preview"
    data: dict[str, Any]


@dataclass(eq=False)
class Job(Generic[R]):
    """One request in the queue. `plan` is whatever the engine needs; `key` decides batching."""

    id: str
    user: str
    plan: Any
    key: Hashable
    priority: int = 0
    created: float = field(default_factory=time.monotonic)
    future: asyncio.Future[R] | None = None
    events: asyncio.Queue[Progress] | None = None
    cancel_flag: threading.Event = field(default_factory=threading.Event)

    def publish(self, loop: asyncio.AbstractEventLoop, event: Progress) -> None:
        """Send a progress event from any thread."""
        if self.events is not None:
            loop.call_soon_threadsafe(self.events.put_nowait, event)


class BatchRunner(Protocol[R]):
    """Runs a batch of compatible jobs (blocking); one result per job, or an exception per job."""

    def __call__(self, jobs: Sequence[Job[R]], report: Callable[[Job[R], Progress], None]) -> list[R | BaseException]:
        """Render; call report(job, event) for progress; honour job.cancel_flag at each step."""
        ...


class Background(Protocol):
    """Work below every render job (training): it runs in short chunks only while no render job waits."""

    def pending(self) -> bool:
        """Whether there is work to do."""
        ...

    def run_chunk(self) -> None:
        """Do one short piece of it, blocking, on the render thread; never raises."""
        ...


@dataclass
class SchedulerStats:
    """Counters for /metrics."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected_full: int = 0
    batches: dict[int, int] = field(default_factory=dict)
    batch_seconds: float = 0.0
    last_batch_seconds: float = 0.0
    steps: int = 0
    step_seconds: float = 0.0
    render_seconds: Histogram = field(default_factory=Histogram)  # each batch's time on the render thread
    job_seconds: Histogram = field(default_factory=Histogram)  # each completed job's, from queued to done


def settle(job: Job[R], outcome: R | BaseException, stats: SchedulerStats) -> None:
    """Give a job its outcome (once) and count it."""
    if job.future is None or job.future.done():
        return
    if isinstance(outcome, JobCancelled):
        stats.cancelled += 1
        job.future.set_exception(outcome)
    elif isinstance(outcome, BaseException):
        stats.failed += 1
        job.future.set_exception(outcome)
    else:
        stats.completed += 1
        stats.job_seconds.observe(time.monotonic() - job.created)
        job.future.set_result(outcome)


def answered(loop: asyncio.AbstractEventLoop, job: Job[R], kept: KeptResults[R] | None) -> Job[R] | None:
    """The job already settled with the result kept under its id, or None when there is none."""
    result = kept.get(job.id) if kept is not None else None
    if result is None:
        return None
    job.future = loop.create_future()
    job.future.set_result(result)
    return job


def eta_estimate(last_batch_s: float, position: int, max_batch: int) -> float:
    """Seconds until a job at `position` is done, from the last batch's time."""
    return (last_batch_s or 5.0) * (1 + position // max(1, max_batch))


async def follow(job: Job[R]) -> AsyncIterator[Progress]:
    """A job's progress events as they come, until its outcome is settled (then await job.future)."""
    # This listener's own queue: a client that attaches later to the same job gets a new one.
    events = job.events
    assert job.future is not None and events is not None
    while not job.future.done():
        getter = asyncio.ensure_future(events.get())
        waiters: set[asyncio.Future[Any]] = {getter, job.future}
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            yield getter.result()
        else:
            getter.cancel()
    while not events.empty():
        yield events.get_nowait()


class Scheduler(Generic[R]):
    """The queue and its single dispatcher task."""

    def __init__(
        self,
        runner: BatchRunner[R],
        executor: Executor,
        *,
        max_queue: int = 64,
        max_batch: int = 4,
        batch_window_s: float = 0.005,
        kept: KeptResults[R] | None = None,
    ) -> None:
        self._runner = runner
        self._kept = kept
        self._executor = executor
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._window = batch_window_s
        self._queues: dict[int, OrderedDict[str, deque[Job[R]]]] = {}
        self._by_id: dict[str, Job[R]] = {}
        self._running: list[Job[R]] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._seq = itertools.count()
        self._background: Background | None = None
        self.stats = SchedulerStats()

    # -- public ------------------------------------------------------------
    def start(self) -> None:
        """Start dispatching."""
        self._task = asyncio.create_task(self._dispatch(), name="scheduler")

    def set_background(self, background: Background) -> None:
        """Run this work whenever no render job waits (see `Background`)."""
        self._background = background

    def wake(self) -> None:
        """Look for work now (background work arrived)."""
        self._wakeup.set()

    @property
    def depth(self) -> int:
        """Jobs waiting (not running)."""
        return sum(len(q) for by_user in self._queues.values() for q in by_user.values())

    def waiting(self) -> dict[int, int]:
        """Jobs waiting, by priority."""
        return {priority: sum(map(len, by_user.values())) for priority, by_user in self._queues.items()}

    def find(self, job_id: str) -> Job[R] | None:
        """A queued or running job by id."""
        return self._by_id.get(job_id)

    def find_running(self) -> list[Job[R]]:
        """The jobs in the batch on the GPU now."""
        return list(self._running)

    def position(self, job: Job[R]) -> int:
        """0 when running; otherwise 1 + the number of jobs that will start before it."""
        if job in self._running:
            return 0
        order = self._dispatch_order()
        return order.index(job) + 1 if job in order else 0

    def eta_s(self, position: int) -> float:
        """A rough wait estimate from recent batch times."""
        return eta_estimate(self.stats.last_batch_seconds, position, self._max_batch)

    def submit(self, job: Job[R]) -> Job[R]:
        """Queue a job; or attach to the job queued or running under its id; or answer it with its kept result."""
        loop = asyncio.get_running_loop()
        existing = self._by_id.get(job.id)
        if existing is not None:
            if job.events is not None:
                self._attach(loop, existing, job.events)
            return existing
        done = answered(loop, job, self._kept)
        if done is not None:
            return done
        if self._closing or self.depth >= self._max_queue:
            self.stats.rejected_full += 1
            raise QueueBusy.full(self.eta_s(self.depth))
        job.future = loop.create_future()
        by_user = self._queues.setdefault(job.priority, OrderedDict())
        by_user.setdefault(job.user, deque()).append(job)
        self._by_id[job.id] = job
        self.stats.submitted += 1
        self._idle.clear()
        job.publish(loop, Progress("queued", {"job_id": job.id, "position": self.position(job)}))
        self._wakeup.set()
        return job

    def _attach(self, loop: asyncio.AbstractEventLoop, job: Job[R], events: asyncio.Queue[Progress]) -> None:
        """A client asks again for a job in flight: its progress goes to this listener from now on."""
        job.events = events
        if job in self._running:
            running = {"job_id": job.id, "batch_size": len(self._running), "attached": True}
            job.publish(loop, Progress("started", running))
        else:
            job.publish(loop, Progress("queued", {"job_id": job.id, "position": self.position(job)}))

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued job now, or a running one at its next step."""
        job = self._by_id.get(job_id)
        if job is None:
            return False
        job.cancel_flag.set()
        for by_user in self._queues.values():
            queue = by_user.get(job.user)
            if queue and job in queue:
                queue.remove(job)
                self._finish(job, JobCancelled())
                break
        return True

    async def drain(self) -> None:
        """Stop accepting work and wait until every queued and running job is done."""
        self._closing = True
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- internals ---------------------------------------------------------
    def _dispatch_order(self) -> list[Job[R]]:
        """All queued jobs in the order they would start (ignoring batching)."""
        order: list[Job[R]] = []
        for priority in sorted(self._queues, reverse=True):
            lanes = [list(q) for q in self._queues[priority].values()]
            for round_ in itertools.zip_longest(*lanes):
                order.extend(j for j in round_ if j is not None)
        return order

    def _next_job(self) -> Job[R] | None:
        for priority in sorted(self._queues, reverse=True):
            by_user = self._queues[priority]
            for user in list(by_user):
                queue = by_user[user]
                if not queue:
                    del by_user[user]
                    continue
                job = queue.popleft()
                # This user goes to the back of the ring: round-robin across users.
                by_user.move_to_end(user)
                if not queue:
                    del by_user[user]
                return job
        return None

    def _companions(self, first: Job[R]) -> list[Job[R]]:
        """Queued jobs that can share first's batch, in the order they would have started."""
        batch = [first]
        for job in self._dispatch_order():
            if len(batch) >= self._max_batch:
                break
            if job.key == first.key:
                batch.append(job)
                self._queues[job.priority][job.user].remove(job)
                if not self._queues[job.priority][job.user]:
                    del self._queues[job.priority][job.user]
        return batch

    def _finish(self, job: Job[R], outcome: R | BaseException) -> None:
        self._by_id.pop(job.id, None)
        if not self._by_id:
            self._idle.set()
        if self._kept is not None and not isinstance(outcome, BaseException):
            self._kept.put(job.id, outcome)
        # One line per job an operator can follow by its id (the bot's journal names the same id).
        log.info("job %s %s", job.id, "drawn" if not isinstance(outcome, BaseException) else type(outcome).__name__)
        settle(job, outcome, self.stats)

    def _reporter(self, loop: asyncio.AbstractEventLoop, batch: list[Job[R]]) -> Callable[[Job[R], Progress], None]:
        """Forwards progress to each job's stream (from the render thread) and times the steps."""
        last_step = time.monotonic()

        def report(job: Job[R], event: Progress) -> None:
            nonlocal last_step
            if event.kind == "step" and job is batch[0]:
                now = time.monotonic()
                self.stats.steps += 1
                self.stats.step_seconds += now - last_step
                last_step = now
            job.publish(loop, event)

        return report

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = self._next_job()
            if first is None:
                if self._background is not None and self._background.pending():
                    # One chunk, then the render queue is looked at again: drawing never waits longer.
                    await loop.run_in_executor(self._executor, self._background.run_chunk)
                    continue
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._window > 0 and self._max_batch > 1:
                # Give requests that arrived together a moment to join.
                await asyncio.sleep(self._window)
            batch = self._companions(first)
            self._running = batch
            for job in batch:
                job.publish(loop, Progress("started", {"job_id": job.id, "batch_size": len(batch)}))
            started = time.monotonic()

            report = self._reporter(loop, batch)

            try:
                outcomes = await loop.run_in_executor(self._executor, self._runner, batch, report)
            except Exception as exc:  # the runner itself broke: every job in it fails
                log.exception("batch failed")
                outcomes = [exc] * len(batch)
            elapsed = time.monotonic() - started
            self.stats.batches[len(batch)] = self.stats.batches.get(len(batch), 0) + 1
            self.stats.batch_seconds += elapsed
            self.stats.last_batch_seconds = elapsed
            self.stats.render_seconds.observe(elapsed)
            self._running = []
            for job, outcome in zip(batch, outcomes, strict=True):
                if job.cancel_flag.is_set() and not isinstance(outcome, BaseException):
                    outcome = JobCancelled()
                self._finish(job, outcome)
