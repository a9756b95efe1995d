"""Worker overhead and batching on CPU with the tiny pipeline.

1. Overhead: the same request as a direct pipeline call, and as an HTTP request
   through the worker (validation, queue, batching window, PNG encode, base64,
   JSON). The ratio is (HTTP median / direct median) - 1.
2. Batching curve: 1, 2, 4 and 8 concurrent requests from different users with
   the same model, size and steps; images per second and the median latency.

    python -m benchmarks.worker_cpu [--size 128] [--steps 10] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import torch

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from tests.fakes.serving import serve
from worker.engine import Engine
from worker.http import WorkerServer
from worker.jobs import LocalJobs
from worker.settings import ModelPreset, WorkerSettings


def settings_for(cache: Path, size: int, steps: int, max_batch: int) -> WorkerSettings:
    preset = ModelPreset(source="tiny", steps=steps, width=size, height=size, guidance=5.0)
    return WorkerSettings(
        cache_dir=str(cache), models={"tiny": preset}, device="cpu", max_batch=max_batch, preview_every=0
    )


def direct_ms(engine: Engine, size: int, steps: int, runs: int) -> float:
    """Median ms of the bare pipeline call, the same work the worker does per request."""
    pipe = engine._pipe("tiny", "generate")
    times = []
    for i in range(runs):
        generator = [torch.Generator().manual_seed(i)]
        started = time.perf_counter()
        with torch.inference_mode():
            pipe(prompt=["a red fox in the snow"], width=size, height=size, num_inference_steps=steps,
                 guidance_scale=5.0, generator=generator)  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def http_ms(url: str, runs: int) -> float:
    """Median ms of a whole HTTP request to the worker."""
    times = []
    async with aiohttp.ClientSession() as session:
        for i in range(runs):
            started = time.perf_counter()
            async with session.post(url, json={"prompt": "a red fox in the snow", "seed": i}) as resp:
                await resp.read()
                assert resp.status == 200
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def curve(url: str, concurrency: int, rounds: int) -> dict[str, float]:
    """Throughput and median latency with `concurrency` requests at once."""
    latencies: list[float] = []

    async def one(session: aiohttp.ClientSession, user: int, seed: int) -> None:
        started = time.perf_counter()
        body = {"prompt": "a red fox in the snow", "seed": seed, "user": f"user{user}"}
        async with session.post(url, json=body) as resp:
            await resp.read()
            assert resp.status == 200
        latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(one(session, u, r * 100 + u) for u in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"images_per_s": concurrency * rounds / elapsed, "p50_ms": statistics.median(latencies) * 1000}


async def run(size: int, steps: int, runs: int) -> dict[str, Any]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        results: dict[str, Any] = {"curve": {}}
        for max_batch in (1, 8):
            settings = settings_for(cache, size, steps, max_batch)
            engine = Engine(settings)
            engine.load()
            jobs = LocalJobs(engine, settings)
            server = WorkerServer(engine, settings, token=None, jobs=jobs)
            runner, port = await serve(server.app())
            url = f"http://127.0.0.1:{port}/v1/images/generations"
            await server._ready.wait()
            if max_batch == 1:
                await http_ms(url, 2)  # warm-up
                # The direct calls run on the worker's own render thread, as the requests do.
                loop = asyncio.get_running_loop()
                results["direct_ms"] = await loop.run_in_executor(jobs.executor, direct_ms, engine, size, steps, runs)
                results["http_ms"] = await http_ms(url, runs)
                results["direct_ms_after"] = await loop.run_in_executor(
                    jobs.executor, direct_ms, engine, size, steps, runs
                )
            for concurrency in (1, 2, 4, 8):
                results["curve"][(max_batch, concurrency)] = await curve(url, concurrency, max(2, runs // concurrency))
            await runner.cleanup()
    return results


def main() -> None:
    loopback_only("benchmarks.worker_cpu")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    r = asyncio.run(run(args.size, args.steps, args.runs))
    direct = (r["direct_ms"] + r["direct_ms_after"]) / 2
    ratio = r["http_ms"] / direct - 1
    print(f"direct {direct:.1f} ms, HTTP {r['http_ms']:.1f} ms, overhead {ratio * 100:+.1f}%")
    rows = []
    for (max_batch, concurrency), row in sorted(r["curve"].items()):
        print(max_batch, concurrency, row)
        rows.append(f"| {max_batch} | {concurrency} | {row['images_per_s']:.2f} | {row['p50_ms']:.0f} |")
    if args.write:
        command = f"python -m benchmarks.worker_cpu --size {args.size} --steps {args.steps} --runs {args.runs}"
        write_section(
            args.write,
            "worker_cpu",
            f"""## Worker on CPU, tiny SDXL-architecture pipeline (issue: the production worker)

- Device: {device()}
- Date: {dt.date.today().isoformat()}
- Command: `{command} --write {args.write}`
- Request: {args.size}x{args.size}, {args.steps} steps, guidance 5, one image.

**Overhead of the worker** (HTTP, validation, queue and batching window, PNG encode, base64, JSON),
against a direct `pipe(...)` call of the same work in the same run (the direct figure is the mean of
the medians before and after the HTTP runs):

| direct pipeline call, median ms | whole HTTP request, median ms | overhead |
|---|---|---|
| {direct:.1f} | {r["http_ms"]:.1f} | {ratio * 100:+.1f}% |

**Batching curve**: concurrent requests from different users, the same model, size and steps.
With `max_batch` 1 every request runs alone; with 8, requests that wait together share a batch.

| max_batch | concurrent requests | images/s | median latency ms |
|---|---|---|---|
{chr(10).join(rows)}
""",
        )


if __name__ == "__main__":
    main()
