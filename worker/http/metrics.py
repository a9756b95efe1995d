"""GET /metrics in Prometheus' text format.

Every family is declared (HELP and TYPE) whether or not it has samples, so a dashboard can rely on
the names: GPU memory has samples only where the worker renders on CUDA.
deploy/grafana/dashboards/egaku.json queries these names, and a test scrapes a real worker for them.
"""

from __future__ import annotations

from worker.jobs import JobQueue
from worker.measures import GpuMemory
from worker.scheduler import SchedulerStats

OUTCOMES = ("submitted", "completed", "failed", "cancelled", "rejected_full")
GPU_MEMORY = ("allocated", "reserved", "total")


def _family(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def prometheus_text(queue: JobQueue | None, ready: bool, memory: GpuMemory | None) -> str:
    """The worker's counters, gauges and histograms."""
    waiting = {0: 0, **(queue.waiting() if queue else {})}  # the default priority always has a sample
    lines = [
        *_family("egaku_queue_depth", "gauge", "Jobs waiting for the GPU."),
        f"egaku_queue_depth {queue.depth if queue else 0}",
        *_family("egaku_queue_waiting", "gauge", "Jobs waiting for the GPU, by priority."),
        *(f'egaku_queue_waiting{{priority="{p}"}} {n}' for p, n in sorted(waiting.items())),
        *_family("egaku_ready", "gauge", "Whether the default model is loaded."),
        f"egaku_ready {int(ready)}",
        *_family("egaku_gpu_memory_bytes", "gauge", "The render device's memory: allocated, reserved, total."),
    ]
    if memory is not None:
        lines += [f'egaku_gpu_memory_bytes{{kind="{k}"}} {getattr(memory, k)}' for k in GPU_MEMORY]
    stats = queue.stats if queue else SchedulerStats()  # before start-up: every family, all zero
    lines += [
        *_family("egaku_jobs_total", "counter", "Jobs by outcome."),
        *(f'egaku_jobs_total{{outcome="{name}"}} {getattr(stats, name)}' for name in OUTCOMES),
        *_family("egaku_batches_total", "counter", "Batches run, by batch size."),
        *(f'egaku_batches_total{{size="{size}"}} {count}' for size, count in sorted(stats.batches.items())),
        *_family("egaku_batch_seconds_total", "counter", "Time spent rendering batches."),
        f"egaku_batch_seconds_total {stats.batch_seconds:.6f}",
        *_family("egaku_step_seconds", "summary", "Denoising step time (sum and count; mean = sum / count)."),
        f"egaku_step_seconds_sum {stats.step_seconds:.6f}",
        f"egaku_step_seconds_count {stats.steps}",
        *_family("egaku_render_seconds", "histogram", "Each batch's time on the render thread."),
        *stats.render_seconds.lines("egaku_render_seconds"),
        *_family("egaku_job_seconds", "histogram", "Each completed job's time from queued to done."),
        *stats.job_seconds.lines("egaku_job_seconds"),
    ]
    return "\n".join(lines) + "\n"
