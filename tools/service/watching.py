"""A job's progress: its id (also the worker's idempotency key) and, when someone watches, the watcher's callbacks.

Progress is a courtesy: whatever the watcher raises is logged and never ends the job.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from tools.service.requests import Requester, Waiting
from worker.protocol import ProgressEvent

log = logging.getLogger(__name__)

# The worker's events, and the waits before a job reaches it (its place in line, the worker away).
Progress = Callable[[ProgressEvent | Waiting], Awaitable[None]]


@contextlib.asynccontextmanager
async def watching(who: Requester, job_id: str | None = None) -> AsyncIterator[tuple[str, Progress | None]]:
    """The job's id (a fresh one unless given) and, when someone watches, a progress callback.

    Progress is a courtesy: whatever the watcher raises is logged and never ends the job.
    """
    job_id = job_id or new_job_id()
    watch = who.watch
    if watch is None:
        yield job_id, None
        return
    await _quietly(watch.started(job_id), job_id)
    try:
        yield job_id, functools.partial(_report_progress, watch.progress, job_id)
    finally:
        await _quietly(watch.finished(job_id), job_id)


def new_job_id() -> str:
    """A fresh job id: 16 hex digits (the Cancel and Retry buttons' custom_ids carry it)."""
    return uuid.uuid4().hex[:16]


async def _report_progress(progress: Callable[..., Awaitable[None]], job_id: str, event: object) -> None:
    await _quietly(progress(job_id, event), job_id)


async def _quietly(call: Awaitable[None], job_id: str) -> None:
    try:
        await call
    except Exception:
        log.exception("progress reporting failed for job %s; the job goes on", job_id)
