"""Cancels that arrive before their job."""

from __future__ import annotations

import time
from collections.abc import Callable


class EarlyCancels:
    """Cancels of job ids this worker does not have (yet).

    A client names its job's id before the job arrives (the bot shows its Cancel button, and
    `/teach` its status message, at once), so a DELETE can overtake the very request it cancels
    while that request is still uploading or being checked. The id is kept for a while, bounded,
    and the job that later arrives under it is refused as cancelled instead of running unseen.
    """

    def __init__(self, keep_s: float = 300.0, limit: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep_s = keep_s
        self._limit = limit
        self._clock = clock
        self._ids: dict[str, float] = {}  # job id -> when its cancel came, oldest first

    def remember(self, job_id: str) -> None:
        """Note a cancel for an id not (yet) known; the oldest notes go past the limit."""
        self._ids.pop(job_id, None)
        self._ids[job_id] = self._clock()
        while len(self._ids) > self._limit:
            del self._ids[next(iter(self._ids))]

    def claim(self, job_id: str) -> bool:
        """Whether a job arriving under this id was cancelled in the last keep_s (the note is used up)."""
        when = self._ids.pop(job_id, None)
        return when is not None and self._clock() - when <= self._keep_s
