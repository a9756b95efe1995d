"""Taking a planned job to the worker: journal, line, send, and send again while the worker is away.

The image service plans a job (validated, checked, ready); this sends it:

1. a job with an answer address is written to the journal first (`tools.stores.journal`), so a
   restart finds it;
2. the job's watcher hears of it (the status message, the Cancel button), then it waits for a
   slot in its server's line (`tools.checks.limits`), hearing its place;
3. it goes to the backend under its job id, the worker's idempotency key. A worker that goes
   away (a broken connection, a refused one while it restarts) gets the same job again, under
   the same id, with doubling waits for up to `retry_for_s`: the worker attaches the repeated
   id to the job it still has, answers it from its kept result, or draws a job it lost once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import OrderedDict

from egaku.errors import JobCancelled, WorkerLost, WorkerUnavailable
from tools.backends.base import ImageBackend, ImageEdit
from tools.checks.limits import JobLimiter
from tools.pictures import RenderedImage
from tools.service.requests import Planned, Requester, Waiting
from tools.service.watching import Progress, watching
from tools.stores.journal import JobJournal
from worker.protocol import EditRequest, ProgressEvent

log = logging.getLogger(__name__)

CANCELS_KEPT = 1024


class Dispatch:
    """Sends planned jobs: journaled, in line, under their ids, again while the worker is away."""

    def __init__(
        self,
        backend: ImageBackend,
        *,
        journal: JobJournal | None = None,
        limiter: JobLimiter | None = None,
        retry_for_s: float = 0.0,
    ) -> None:
        self.backend = backend
        self.journal = journal
        self._limiter = limiter
        self._retry_for_s = retry_for_s
        self._sending: dict[str, asyncio.Event] = {}  # job id -> set when it is cancelled
        self._cancelled: OrderedDict[str, None] = OrderedDict()  # cancels of jobs not (yet) sending here

    def journals(self, who: Requester) -> bool:
        """Whether this job is written to the journal (it has somewhere to be answered)."""
        return self.journal is not None and who.answer is not None

    async def send(self, who: Requester, job_id: str, planned: Planned) -> list[RenderedImage]:
        """Journal, watch, wait in line, send; the backend's images (or its error)."""
        if self.journals(who):
            assert self.journal is not None
            await self.journal.accepted(job_id, who, planned)
        async with watching(who, job_id) as (_, progress):
            if self._limiter is None:
                return await self._deliver(who, job_id, planned, progress)
            on_wait = functools.partial(_quietly_to, progress) if progress is not None else None
            async with self._limiter.slot(
                who.user_id, who.guild_id, who.guild_cap, job_id=job_id, on_wait=on_wait
            ):  # fmt: skip
                return await self._deliver(who, job_id, planned, progress)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: out of its line, out of its wait for the worker, or at the worker; False when none had it."""
        if self._limiter is not None and self._limiter.cancel(job_id):
            return True
        sending = self._sending.get(job_id)
        if sending is not None:
            sending.set()
        else:
            self._cancelled[job_id] = None
            while len(self._cancelled) > CANCELS_KEPT:
                self._cancelled.popitem(last=False)
        try:
            return await self.backend.cancel(job_id) or sending is not None
        except WorkerUnavailable:
            return sending is not None  # the worker is away: the job stops waiting for it

    async def _deliver(
        self, who: Requester, job_id: str, planned: Planned, progress: Progress | None
    ) -> list[RenderedImage]:
        """The backend call, again under the same id while the worker is away, up to `retry_for_s`."""
        if job_id in self._cancelled:
            del self._cancelled[job_id]
            raise JobCancelled(f"job {job_id} was cancelled before it was sent")
        cancelled = self._sending[job_id] = asyncio.Event()
        journaled = self.journals(who)
        on_progress = self._following(job_id, progress) if journaled else progress
        deadline = time.monotonic() + self._retry_for_s
        delay = 1.0
        try:
            while True:
                if journaled:
                    assert self.journal is not None
                    await self.journal.moved(job_id, "sent")
                try:
                    return await self._call(planned, on_progress)
                except (WorkerLost, WorkerUnavailable) as exc:
                    if cancelled.is_set():
                        raise JobCancelled(f"job {job_id} was cancelled while the worker was away") from exc
                    wait = delay * random.uniform(1.0, 1.25)
                    if time.monotonic() + wait > deadline:
                        raise
                    log.warning("job %s: the worker went away (%s); sending it again in %.1f s", job_id, exc, wait)
                    if progress is not None:
                        await progress(Waiting("worker"))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cancelled.wait(), wait)
                    if cancelled.is_set():
                        raise JobCancelled(f"job {job_id} was cancelled while the worker was away") from exc
                    delay = min(30.0, delay * 2)
        finally:
            self._sending.pop(job_id, None)

    async def _call(self, planned: Planned, on_progress: Progress | None) -> list[RenderedImage]:
        request = planned.request
        if isinstance(request, EditRequest):  # the picture edited first, then the ones the model reads beside it
            assert planned.pngs, "an edit is sent with its pictures"
            edit = ImageEdit(request, planned.pngs[0], references=planned.pngs[1:])
            return await self.backend.edit(edit, on_progress)
        return await self.backend.generate(request, on_progress)

    def _following(self, job_id: str, progress: Progress | None) -> Progress:
        """The progress callback, noting in the journal when the worker starts drawing the job."""
        journal = self.journal
        assert journal is not None

        async def follow(event: ProgressEvent | Waiting) -> None:
            if isinstance(event, ProgressEvent) and event.kind == "started":
                await journal.moved(job_id, "running")
            if progress is not None:
                await progress(event)

        return follow


async def _quietly_to(progress: Progress, event: Waiting) -> None:
    await progress(event)
