"""The lesson lane: /teach jobs, below rendering, on the render thread. Torch-free.

A training job (a "lesson") never holds the GPU against a picture: the scheduler runs one
short chunk of training steps (`[worker.teach] chunk_steps`) only when no render job is
waiting, then looks at the render queue again. A picture asked for during training waits
for at most one chunk. Lessons run one at a time, first come first served, at most
`max_queue` waiting or running (past it, 503). Each is bounded: `max_steps`, and
`max_seconds` of training time, after which it ends with what it learned so far.

Progress goes out on the lesson's event queue like a render job's: `queued`, `started`,
then `step` with the loss and an ETA. A cancel takes a waiting lesson out at once and
stops a running one before its next chunk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.errors import JobCancelled, QueueBusy
from worker.protocol import TeachResponse
from worker.scheduler import Job, Progress
from worker.settings import TeachSettings

log = logging.getLogger(__name__)

Lesson = Job[TeachResponse]


class Teacher(Protocol):
    """What the lane needs from the engine: a trainer for a plan (built on the render thread)."""

    def trainer(self, plan: Any) -> Any: ...


class Training(Protocol):
    """A trainer as the lane drives it (worker.teach.Trainer)."""

    step: int
    seconds: float

    @property
    def loss(self) -> float | None: ...

    def run(self, steps: int) -> None: ...

    def result(self, stopped_by: str) -> TeachResponse: ...


@dataclass
class _Running:
    lesson: Lesson
    trainer: Training | None = None
    steps: int = 0  # asked for
    started: float = field(default_factory=time.monotonic)


class LessonLane:
    """Lessons waiting and the one training now; the scheduler calls `run_chunk` when the GPU is free."""

    def __init__(self, teacher: Teacher, settings: TeachSettings, wake: Callable[[], None] = lambda: None) -> None:
        self._teacher = teacher
        self._settings = settings
        self._wake = wake
        self._waiting: deque[Lesson] = deque()
        self._running: _Running | None = None
        self._lock = threading.Lock()  # the loop submits and cancels; the render thread trains
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_step_s = 0.0

    # -- the loop's side ----------------------------------------------------
    def submit(self, lesson: Lesson) -> Lesson:
        """Queue a lesson (or attach to the one with the same id); QueueBusy past `max_queue`."""
        existing = self.find(lesson.id)
        if existing is not None:
            return existing
        self._loop = asyncio.get_running_loop()
        with self._lock:
            if len(self._waiting) + (self._running is not None) >= self._settings.max_queue:
                raise QueueBusy.full(self.eta_s(len(self._waiting) + 1))
            lesson.future = self._loop.create_future()
            self._waiting.append(lesson)
            position = len(self._waiting) + (self._running is not None)
        eta = round(self.eta_s(position), 3)
        lesson.publish(self._loop, Progress("queued", {"job_id": lesson.id, "position": position, "eta_s": eta}))
        self._wake()
        return lesson

    def find(self, job_id: str) -> Lesson | None:
        """A waiting or running lesson by id."""
        with self._lock:
            if self._running is not None and self._running.lesson.id == job_id:
                return self._running.lesson
            return next((lesson for lesson in self._waiting if lesson.id == job_id), None)

    def cancel(self, job_id: str) -> bool:
        """Cancel a waiting lesson now, or the running one before its next chunk; False when unknown."""
        lesson = self.find(job_id)
        if lesson is None:
            return False
        lesson.cancel_flag.set()
        with self._lock:
            waiting = lesson in self._waiting
            if waiting:
                self._waiting.remove(lesson)
        if waiting:
            self._settle(lesson, JobCancelled())
        else:
            self._wake()  # the dispatcher settles it at once if it is between chunks
        return True

    def eta_s(self, position: int) -> float:
        """A rough wait: a whole run per lesson ahead, from the last step time (or a guess)."""
        per_step = self._last_step_s or 0.5
        return per_step * self._settings.steps * max(0, position)

    def close(self) -> None:
        """Cancel everything (the worker is stopping)."""
        with self._lock:
            lessons = [*self._waiting, *([self._running.lesson] if self._running else [])]
            self._waiting.clear()
        for lesson in lessons:
            lesson.cancel_flag.set()
            self._settle(lesson, JobCancelled("the job was cancelled: the worker is stopping"))

    # -- the render thread's side --------------------------------------------
    def pending(self) -> bool:
        """Whether there is training to do."""
        with self._lock:
            return self._running is not None or bool(self._waiting)

    def run_chunk(self) -> None:
        """Train the current lesson for one chunk (starting the next lesson first if none runs). Never raises."""
        running = self._current()
        if running is None:
            return
        lesson = running.lesson
        try:
            if lesson.cancel_flag.is_set():
                raise JobCancelled()
            if running.trainer is None:
                running.trainer = self._teacher.trainer(lesson.plan)
                running.steps = lesson.plan.steps
                self._publish(lesson, Progress("started", {"job_id": lesson.id, "batch_size": 1}))
            trainer = running.trainer
            chunk = min(self._settings.chunk_steps, running.steps - trainer.step)
            trainer.run(chunk)
            self._last_step_s = trainer.seconds / max(1, trainer.step)
            left = running.steps - trainer.step
            eta = min(left * self._last_step_s, max(0.0, lesson.plan.max_seconds - trainer.seconds))
            step = {"step": trainer.step, "steps": running.steps, "eta_s": round(eta, 3), "loss": trainer.loss}
            self._publish(lesson, Progress("step", step))
            if left <= 0:
                self._finish(lesson, trainer.result("steps"))
            elif trainer.seconds >= lesson.plan.max_seconds:
                self._finish(lesson, trainer.result("time"))
        except Exception as exc:  # every failure is this lesson's; the render thread goes on
            if not isinstance(exc, JobCancelled):
                log.warning("training job %s failed", lesson.id, exc_info=exc)
            self._finish(lesson, exc)

    def _current(self) -> _Running | None:
        with self._lock:
            if self._running is None and self._waiting:
                self._running = _Running(self._waiting.popleft())
            return self._running

    def _finish(self, lesson: Lesson, outcome: TeachResponse | BaseException) -> None:
        with self._lock:
            if self._running is not None and self._running.lesson is lesson:
                self._running = None
        self._settle(lesson, outcome)

    def _publish(self, lesson: Lesson, event: Progress) -> None:
        if self._loop is not None:
            lesson.publish(self._loop, event)

    def _settle(self, lesson: Lesson, outcome: TeachResponse | BaseException) -> None:
        """Give the lesson its outcome on the loop's thread (once)."""

        def settle() -> None:
            future = lesson.future
            if future is None or future.done():
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        if self._loop is not None:
            self._loop.call_soon_threadsafe(settle)
