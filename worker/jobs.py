"""What runs the jobs the worker's routes accept: this process, or Ray Serve replicas. Torch-free.

The HTTP server (`worker/server.py`) validates and plans a request, then hands a `Job`
to a `JobQueue`. The queue is either the in-process `Scheduler` over one render thread
(`LocalJobs`, the single-box worker), or a gateway to Ray Serve replicas that each run
that same `Scheduler` (`worker.serve.ServeJobs`). The routes and their validation exist
once, whichever runs the jobs.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from worker.protocol import DescriptionResponse, GenerationResponse
from worker.scheduler import Job, Scheduler, SchedulerStats
from worker.settings import WorkerSettings
from worker.training import TrainingLane


class JobQueue(Protocol):
    """The queue the routes talk to (the in-process `Scheduler` is one)."""

    stats: SchedulerStats

    @property
    def depth(self) -> int:
        """Jobs waiting (not running)."""
        ...

    def submit(self, job: Job[GenerationResponse]) -> Job[GenerationResponse]:
        """Queue a job (or attach to the job with the same id); raise QueueFull when full."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when it is unknown."""
        ...

    def find(self, job_id: str) -> Job[GenerationResponse] | None:
        """A queued or running job by id."""
        ...

    def find_running(self) -> list[Job[GenerationResponse]]:
        """The jobs rendering now."""
        ...

    def position(self, job: Job[GenerationResponse]) -> int:
        """0 when running, else 1 + the jobs that start before it."""
        ...

    def eta_s(self, position: int) -> float:
        """A rough wait estimate for a position."""
        ...

    async def drain(self) -> None:
        """Stop accepting work and wait for the jobs in flight."""
        ...


class Jobs(Protocol):
    """A place where jobs run: it opens the queue, gets ready to render, and captions."""

    def open(self) -> JobQueue:
        """The queue (called once, with the event loop running); jobs may queue before `load` ends."""
        ...

    async def load(self) -> None:
        """Return once jobs can render (the default model is loaded)."""
        ...

    async def describe(self, image: bytes) -> DescriptionResponse:
        """An English prompt for an uploaded picture (/describe)."""
        ...

    def training(self) -> TrainingLane | None:
        """Where /teach jobs queue (below rendering), or None where this runner cannot train."""
        ...

    def close(self) -> None:
        """Release what `open` and `load` took."""
        ...


class LocalRenderer(Protocol):
    """What LocalJobs needs from the engine."""

    def load(self, name: str | None = None) -> None: ...

    def run_batch(self, jobs: Any, report: Any) -> list[Any]: ...

    def describe(self, image: bytes) -> Any: ...

    def trainer(self, plan: Any) -> Any: ...


class LocalJobs:
    """Jobs in this process: the fair scheduler over one render thread."""

    def __init__(self, engine: LocalRenderer, settings: WorkerSettings) -> None:
        self._engine = engine
        self._settings = settings
        # One render thread: batches reach the GPU one at a time and never block the loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._scheduler: Scheduler[GenerationResponse] | None = None
        self._training: TrainingLane | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The render thread (benchmarks time direct renders on it)."""
        return self._executor

    def open(self) -> Scheduler[GenerationResponse]:
        """The fair, batching scheduler over the render thread."""
        s = self._settings
        self._scheduler = Scheduler(
            self._engine.run_batch, self._executor, max_queue=s.max_queue, max_batch=s.max_batch,
            batch_window_s=s.batch_window_s,
        )  # fmt: skip
        # Training runs in chunks on the same render thread, only while no picture waits.
        self._training = TrainingLane(self._engine, s.teach, wake=self._scheduler.wake)
        self._scheduler.set_background(self._training)
        return self._scheduler

    def training(self) -> TrainingLane | None:
        """The training lane (exists once `open` ran)."""
        return self._training

    async def load(self) -> None:
        """Load the default model on the render thread, then start dispatching."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.load)
        assert self._scheduler is not None
        self._scheduler.start()

    async def describe(self, image: bytes) -> DescriptionResponse:
        """Caption on the render thread: the captioner shares the GPU with the batches, one at a time."""
        # While the model loads, this waits behind the load like any job.
        described: DescriptionResponse = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._engine.describe, image
        )
        return described

    def close(self) -> None:
        """Stop the render thread (and tell waiting /teach jobs)."""
        if self._training is not None:
            self._training.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
