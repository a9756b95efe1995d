"""GET /metrics in Prometheus' text format."""

from __future__ import annotations

from worker.scheduler import SchedulerStats


def prometheus_text(depth: int, ready: bool, stats: SchedulerStats | None) -> str:
    """The worker's counters and gauges."""
    lines = [
        "# HELP egaku_queue_depth Jobs waiting for the GPU.",
        "# TYPE egaku_queue_depth gauge",
        f"egaku_queue_depth {depth}",
        "# HELP egaku_ready Whether the default model is loaded.",
        "# TYPE egaku_ready gauge",
        f"egaku_ready {int(ready)}",
    ]
    if stats is not None:
        lines += [
            "# HELP egaku_jobs_total Jobs by outcome.",
            "# TYPE egaku_jobs_total counter",
            *(
                f'egaku_jobs_total{{outcome="{name}"}} {getattr(stats, name)}'
                for name in ("submitted", "completed", "failed", "cancelled", "rejected_full")
            ),
            "# HELP egaku_batches_total Batches run, by batch size.",
            "# TYPE egaku_batches_total counter",
            *(f'egaku_batches_total{{size="{size}"}} {count}' for size, count in sorted(stats.batches.items())),
            "# HELP egaku_batch_seconds_total Time spent rendering batches.",
            "# TYPE egaku_batch_seconds_total counter",
            f"egaku_batch_seconds_total {stats.batch_seconds:.6f}",
            "# HELP egaku_step_seconds Denoising step time (sum and count; mean = sum / count).",
            "# TYPE egaku_step_seconds summary",
            f"egaku_step_seconds_sum {stats.step_seconds:.6f}",
            f"egaku_step_seconds_count {stats.steps}",
        ]
    return "\n".join(lines) + "\n"
