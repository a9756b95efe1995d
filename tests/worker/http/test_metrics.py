"""/metrics: every family declared, jobs waiting by priority, the GPU's memory when there is one."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

from worker.http.metrics import prometheus_text
from worker.measures import GpuMemory
from worker.scheduler import Job, Scheduler

FAMILIES = [
    ("egaku_queue_depth", "gauge"),
    ("egaku_queue_waiting", "gauge"),
    ("egaku_ready", "gauge"),
    ("egaku_gpu_memory_bytes", "gauge"),
    ("egaku_jobs_total", "counter"),
    ("egaku_batches_total", "counter"),
    ("egaku_batch_seconds_total", "counter"),
    ("egaku_step_seconds", "summary"),
    ("egaku_render_seconds", "histogram"),
    ("egaku_job_seconds", "histogram"),
]


def test_before_start_up_every_family_is_declared() -> None:
    text = prometheus_text(None, False, None)
    assert re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M) == FAMILIES
    assert 'egaku_queue_waiting{priority="0"} 0\n' in text and "egaku_ready 0\n" in text
    assert "egaku_gpu_memory_bytes{" not in text  # declared, no samples: this worker renders on no GPU


def test_gpu_memory() -> None:
    text = prometheus_text(None, True, GpuMemory(allocated=2 << 30, reserved=3 << 30, total=80 << 30))
    assert re.findall(r"^egaku_gpu_memory_bytes.*$", text, re.M) == [
        'egaku_gpu_memory_bytes{kind="allocated"} 2147483648',
        'egaku_gpu_memory_bytes{kind="reserved"} 3221225472',
        'egaku_gpu_memory_bytes{kind="total"} 85899345920',
    ]


async def test_jobs_waiting_by_priority() -> None:
    with ThreadPoolExecutor(1) as executor:
        scheduler: Scheduler[str] = Scheduler(lambda jobs, report: [], executor)  # never started: jobs wait
        for n, (user, priority) in enumerate([("a", 0), ("b", 5), ("c", 5)]):
            scheduler.submit(Job(id=f"j{n}", user=user, plan=None, key="k", priority=priority))
        assert scheduler.waiting() == {0: 1, 5: 2}
        text = prometheus_text(scheduler, True, None)
        await asyncio.sleep(0)
    assert re.findall(r"^egaku_queue_waiting.*$", text, re.M) == [
        'egaku_queue_waiting{priority="0"} 1',
        'egaku_queue_waiting{priority="5"} 2',
    ]
    assert "egaku_queue_depth 3\n" in text and 'egaku_jobs_total{outcome="submitted"} 3\n' in text
