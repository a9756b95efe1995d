"""What runs the jobs the worker's routes accept: this process, or Ray Serve replicas. Torch-free.

The HTTP front (`worker/http/`) validates and plans a request with the `RenderEngine`, then
hands a `Job` to a `JobQueue`. The queue is either the in-process `Scheduler` over one render
thread (`LocalJobs`, the single-box worker), or a gateway to Ray Serve replicas that each run
that same `Scheduler` (`worker.ray_serve.ServeJobs`). The routes and their validation exist
once, whichever runs the jobs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from worker.errors import RenderTimeout
from worker.kept import kept_responses
from worker.lessons import LessonLane
from worker.measures import GpuMemory
from worker.protocol import (
    DescriptionResponse,
    EditRequest,
    GenerationRequest,
    GenerationResponse,
    TeachRequest,
    UpscaleResponse,
)
from worker.scheduler import Job, Scheduler, SchedulerStats
from worker.settings import WorkerSettings
from worker.upscale.plan import UpscalePlan


class JobQueue(Protocol):
    """The queue the routes talk to (the in-process `Scheduler` is one)."""

    stats: SchedulerStats

    @property
    def depth(self) -> int:
        """Jobs waiting (not running)."""
        ...

    def waiting(self) -> dict[int, int]:
        """Jobs waiting, by priority."""
        ...

    def submit(self, job: Job[GenerationResponse]) -> Job[GenerationResponse]:
        """Queue a job (or attach to the job with the same id); raise QueueBusy when full."""
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

    async def upscale(self, plan: UpscalePlan) -> UpscaleResponse:
        """A picture enlarged by the upscaler network (POST /v1/images/upscales)."""
        ...

    def lessons(self) -> LessonLane | None:
        """Where /teach jobs queue (below rendering), or None where this runner cannot train."""
        ...

    def loaded(self) -> list[str] | None:
        """The presets in memory where the jobs run, or None where this process cannot see them."""
        ...

    def close(self) -> None:
        """Release what `open` and `load` took."""
        ...


class RenderEngine(Protocol):
    """What the routes and the runners need from an engine (`worker.engine.Engine` needs torch; tests may fake it)."""

    @property
    def model_names(self) -> list[str]: ...

    @property
    def loaded(self) -> list[str]: ...

    def memory(self) -> GpuMemory | None: ...

    def load(self, name: str | None = None) -> None: ...

    def plan(self, request: GenerationRequest, job_id: str = "") -> Any: ...

    def plan_edit(
        self,
        request: EditRequest,
        image: bytes,
        mask: bytes | None,
        job_id: str = "",
        *,
        extra_images: Sequence[bytes] = (),
    ) -> Any: ...

    def run_batch(self, jobs: Any, report: Any) -> list[Any]: ...

    def describe(self, image: bytes) -> Any: ...

    def upscale(self, plan: Any, stop: threading.Event | None = None) -> Any: ...

    def plan_teach(self, request: TeachRequest, images: Sequence[bytes], job_id: str = "") -> Any: ...

    def trainer(self, plan: Any) -> Any: ...


class LocalJobs:
    """Jobs in this process: the fair scheduler over one render thread."""

    def __init__(self, engine: RenderEngine, settings: WorkerSettings) -> None:
        self._engine = engine
        self._settings = settings
        # One render thread: batches reach the GPU one at a time and never block the loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._scheduler: Scheduler[GenerationResponse] | None = None
        self._lessons: LessonLane | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The render thread (benchmarks time direct renders on it)."""
        return self._executor

    def open(self) -> Scheduler[GenerationResponse]:
        """The fair, batching scheduler over the render thread."""
        s = self._settings
        self._scheduler = Scheduler(
            self._engine.run_batch, self._executor, max_queue=s.max_queue, max_batch=s.max_batch,
            batch_window_s=s.batch_window_s, kept=kept_responses(s),
        )  # fmt: skip
        # Training runs in chunks on the same render thread, only while no picture waits.
        self._lessons = LessonLane(self._engine, s.teach, wake=self._scheduler.wake)
        self._scheduler.set_background(self._lessons)
        return self._scheduler

    def lessons(self) -> LessonLane | None:
        """The teach lane (exists once `open` ran)."""
        return self._lessons

    def loaded(self) -> list[str]:
        """The engine's presets in memory."""
        return self._engine.loaded

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

    async def upscale(self, plan: UpscalePlan) -> UpscaleResponse:
        """Upscale on the render thread, between batches, like the other helper models.

        Past `request_timeout_s`, or when the client leaves, it stops at its next tile.
        """
        stop = threading.Event()
        running = asyncio.get_running_loop().run_in_executor(self._executor, self._engine.upscale, plan, stop)
        # Stopped after a timeout, it ends with JobCancelled that nobody awaits any more: retrieve it here.
        running.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            upscaled: UpscaleResponse = await asyncio.wait_for(
                asyncio.shield(running), timeout=self._settings.request_timeout_s
            )
        except TimeoutError as exc:
            stop.set()
            raise RenderTimeout(f"the upscale ran past {self._settings.request_timeout_s:.0f}s") from exc
        except asyncio.CancelledError:
            stop.set()
            raise
        return upscaled

    def close(self) -> None:
        """Stop the render thread (and tell waiting /teach jobs)."""
        if self._lessons is not None:
            self._lessons.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
