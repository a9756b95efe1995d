"""A job's progress: its id (also the worker's idempotency key) and, when someone watches, the watcher's callbacks.

Progress is a courtesy: whatever the watcher raises is logged and never ends the job.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from tools.backends.base import ProgressCallback
from tools.service.requests import Requester

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def watching(who: Requester) -> AsyncIterator[tuple[str, ProgressCallback | None]]:
    """A job id (also the worker's idempotency key) and, when someone watches, a progress callback.

    Progress is a courtesy: whatever the watcher raises is logged and never ends the job.
    """
    job_id = uuid.uuid4().hex[:16]
    watch = who.watch
    if watch is None:
        yield job_id, None
        return
    await _quietly(watch.started(job_id), job_id)
    try:
        yield job_id, functools.partial(_report_progress, watch.progress, job_id)
    finally:
        await _quietly(watch.finished(job_id), job_id)


async def _report_progress(progress: Callable[..., Awaitable[None]], job_id: str, event: object) -> None:
    await _quietly(progress(job_id, event), job_id)


async def _quietly(call: Awaitable[None], job_id: str) -> None:
    try:
        await call
    except Exception:
        log.exception("progress reporting failed for job %s; the job goes on", job_id)
