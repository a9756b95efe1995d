"""What the worker measures, torch-free: time histograms and the GPU's memory (for /metrics and egaku doctor)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Seconds: a fast preset renders a batch in well under a second, FLUX at 28 steps in tens of seconds,
# and a job can wait minutes in a full queue.
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class Histogram:
    """A Prometheus histogram: cumulative bucket counts, the sum and the count of what was observed."""

    bounds: tuple[float, ...] = SECONDS_BUCKETS
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        """Count one value into its bucket (a value equal to a bound counts under it, as Prometheus's `le`)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        """The `_bucket`, `_sum` and `_count` samples, in Prometheus' text format."""
        out = []
        running = 0
        for bound, n in zip((*map(_number, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        return [*out, f"{name}_sum {self.total:.6f}", f"{name}_count {self.count}"]


def _number(bound: float) -> str:
    return f"{bound:g}"


@dataclass(frozen=True)
class GpuDevice:
    """A CUDA device as torch sees it: its name and its memory in bytes."""

    name: str
    total_bytes: int


@dataclass(frozen=True)
class GpuMemory:
    """The render device's memory, in bytes: what this process's tensors hold, what its allocator reserved,
    and the device's total."""

    allocated: int
    reserved: int
    total: int
