"""Finished jobs' results, kept a while by job id. Torch-free.

A client that lost its answer (the bot was restarted mid-render, a connection broke after the
job was done) asks again under the same job id. A job still queued or running is attached to
(`Scheduler.submit`); a finished one is answered from here instead of being drawn again. The
store is bounded in time (`keep_s`) and in size (`max_bytes`, oldest first), and it lives in
memory: a worker that restarts has forgotten its results, and a repeated id is drawn again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from worker.protocol import GenerationResponse
from worker.settings import WorkerSettings

R = TypeVar("R")


class KeptResults(Generic[R]):
    """Successful results by job id, for `keep_s` seconds and at most `max_bytes` in all."""

    def __init__(
        self,
        keep_s: float,
        max_bytes: int,
        size_of: Callable[[R], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keep_s = keep_s
        self._max_bytes = max_bytes
        self._size_of = size_of
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, int, R]] = OrderedDict()  # oldest first
        self._bytes = 0
        self.hits = 0  # repeated ids answered from here (for /metrics and the chaos benchmark)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, job_id: str, result: R) -> None:
        """Keep a job's result; the oldest go when the store is over its size."""
        size = self._size_of(result)
        if size > self._max_bytes or self._keep_s <= 0:
            return
        self._drop(job_id)
        self._items[job_id] = (self._clock(), size, result)
        self._bytes += size
        self._expire()
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._items)))

    def get(self, job_id: str) -> R | None:
        """The result kept for a job id, if it finished within `keep_s`."""
        self._expire()
        item = self._items.get(job_id)
        if item is None:
            return None
        self.hits += 1
        return item[2]

    def _expire(self) -> None:
        cutoff = self._clock() - self._keep_s
        while self._items:
            oldest = next(iter(self._items))
            if self._items[oldest][0] > cutoff:
                break
            self._drop(oldest)

    def _drop(self, job_id: str) -> None:
        item = self._items.pop(job_id, None)
        if item is not None:
            self._bytes -= item[1]


def response_bytes(response: GenerationResponse) -> int:
    """About how much memory a response holds: its images' base64 text and links."""
    return 1024 + sum(len(item.b64_json or "") + len(item.url or "") for item in response.data)


def kept_responses(settings: WorkerSettings) -> KeptResults[GenerationResponse]:
    """The store for finished image jobs, bounded by `[worker] keep_results_s` and `keep_results_mb`."""
    return KeptResults(settings.keep_results_s, settings.keep_results_mb << 20, response_bytes)
