"""Scaling out on Ray Serve: throughput for N = 1..4 replicas, added latency, recovery from a kill.

The replicas render with a fixed-cost engine: each batch sleeps `--cost` seconds (simulated GPU
time, which releases the CPU) and returns a 1-pixel PNG. What is left is Serve's and egaku's own
overhead (gateway, routing, the replicas' schedulers, progress), not this machine's few cores.

1. Throughput: `--clients` closed-loop clients from 8 users keep every replica busy; jobs per second
   for N replicas against N × the one-replica figure (goal: at least 0.9 · N).
2. Added latency at N = 1: one request at a time through the gateway and a replica, against the same
   engine in process (`egaku worker`), medians.
3. Recovery: at N = 2 under load, one replica is SIGKILLed; the jobs it held run again elsewhere.
   Failed requests, the longest wait between answers after the kill, and the time until a
   replacement replica answers.

    python -m benchmarks.serve_scaling [--cost 0.25] [--jobs 80] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import functools
import io
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from tests.fakes.serving import serve as serve_locally
from tools.backends.embedded import free_port
from worker.http import WorkerServer
from worker.jobs import LocalJobs
from worker.protocol import DescriptionResponse, GenerationResponse, ImageData, UsedParameters
from worker.scheduler import Job, Progress
from worker.settings import ModelPreset, ServeSettings, WorkerSettings

USERS = [f"user{i}" for i in range(8)]


def _pixel() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class FixedCostEngine:
    """Renders a batch in `cost_s` of sleep (the GPU's time, with the CPU free) and one step event."""

    def __init__(self, settings: WorkerSettings, cost_s: float) -> None:
        self._settings = settings
        self.cost_s = cost_s
        self._loaded: set[str] = set()
        self._png = _pixel()

    @property
    def model_names(self) -> list[str]:
        return sorted(self._settings.models)

    @property
    def loaded(self) -> list[str]:
        return sorted(self._loaded)

    def load(self, name: str | None = None) -> None:
        self._loaded.add(name or self._settings.default_model)

    def unload(self, name: str) -> None:
        self._loaded.discard(name)

    def describe(self, image: bytes) -> DescriptionResponse:
        return DescriptionResponse(prompt="a picture", model="none")

    def run_batch(
        self, jobs: Sequence[Job[GenerationResponse]], report: Callable[[Job[GenerationResponse], Progress], None]
    ) -> list[GenerationResponse]:
        time.sleep(self.cost_s)
        for job in jobs:
            report(job, Progress("step", {"step": 1, "steps": 1, "eta_s": 0.0}))
        return [self._answer(job.plan) for job in jobs]

    def _answer(self, plan: Any) -> GenerationResponse:
        used = UsedParameters(
            model=plan.model, width=plan.size.width, height=plan.size.height, steps=plan.steps,
            guidance=plan.guidance, seed=plan.seeds[0],
        )  # fmt: skip
        data = [ImageData(b64_json=self._png, revised_prompt=plan.prompt, seed=plan.seeds[0], parameters=used)]
        return GenerationResponse(created=int(time.time()), data=data, job_id=plan.job_id or None)


def make_engine(cost_s: float) -> Callable[[WorkerSettings], FixedCostEngine]:
    """An engine factory with the chosen cost (it travels to the replicas)."""
    return functools.partial(FixedCostEngine, cost_s=cost_s)


def settings_for(cache: Path, replicas: int, port: int) -> WorkerSettings:
    """One job per batch (so each replica renders one job per `cost`), N replicas of fractional CPU."""
    preset = ModelPreset(source="tiny", steps=1, width=64, height=64)
    return WorkerSettings(
        cache_dir=str(cache), models={"tiny": preset}, device="cpu", max_batch=1, preview_every=0, port=port,
        warmup=False, serve=ServeSettings(replicas=replicas, num_gpus=0, num_cpus=0.25, gateway_cpus=0.25),
    )  # fmt: skip


async def throughput(url: str, jobs: int, clients: int) -> float:
    """Jobs per second with `clients` closed-loop clients, over `jobs` jobs (after a warm-up round)."""
    counter = iter(range(jobs))

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        for n in counter:
            body = {"prompt": "a fox", "user": USERS[index % len(USERS)], "seed": n}
            async with session.post(url + "/v1/images/generations", json=body) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await asyncio.gather(*(client(session, i) for i in range(clients)))  # warm-up: every replica routed to
        counter = iter(range(jobs))
        started = time.perf_counter()
        await asyncio.gather(*(client(session, i) for i in range(clients)))
        return jobs / (time.perf_counter() - started)


async def latency_ms(url: str, runs: int) -> float:
    """Median ms of one request at a time."""
    times = []
    async with aiohttp.ClientSession() as session:
        for i in range(runs + 2):
            started = time.perf_counter()
            async with session.post(url + "/v1/images/generations", json={"prompt": "a fox", "seed": i}) as resp:
                assert resp.status == 200
                await resp.read()
            if i >= 2:
                times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def in_process_ms(cache: Path, cost_s: float, runs: int) -> float:
    """The same engine and request, served by `egaku worker`'s in-process path."""
    settings = settings_for(cache, 1, 0)
    from worker.engine import Engine  # plans requests, as the gateway's does; renders nothing here

    fixed = make_engine(cost_s)(settings)
    server = WorkerServer(Engine(settings), settings, token=None, jobs=LocalJobs(fixed, settings))
    runner, port = await serve_locally(server.app())
    try:
        return await latency_ms(f"http://127.0.0.1:{port}", runs)
    finally:
        await runner.cleanup()


async def recovery(url: str, clients: int, jobs: int) -> dict[str, float]:
    """Kill one of 2 replicas under load: how long until its jobs are answered and Serve has 2 again."""
    from ray import serve

    from worker.ray_serve import APP_NAME, REPLICA_DIED

    handle = serve.get_deployment_handle("Renderer", app_name=APP_NAME)
    pids: dict[str, int] = {}
    while len(pids) < 2:
        replica, pid = await handle.whoami.remote()
        pids[replica] = pid
    answered: list[float] = []
    failures = 0
    counter = iter(range(jobs))

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        nonlocal failures
        for n in counter:
            body = {"prompt": "a fox", "user": USERS[index % len(USERS)], "seed": n}
            async with session.post(url + "/v1/images/generations", json=body) as resp:
                await resp.read()
                failures += resp.status != 200
                answered.append(time.perf_counter())

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        load = asyncio.gather(*(client(session, i) for i in range(clients)))
        await asyncio.sleep(2.0)
        victim = next(iter(pids.values()))
        killed = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        # Replaced: a replica that was not there before answers (it has loaded its model).
        while True:
            with contextlib.suppress(*REPLICA_DIED):
                _replica, pid = await handle.whoami.remote()
                if pid not in pids.values():
                    break
            await asyncio.sleep(0.05)
        replaced = time.perf_counter() - killed
        await load
    # The longest gap between answers after the kill is what a user of the dead replica waited extra.
    after = sorted(t for t in answered if t >= killed)
    gaps = [b - a for a, b in zip([killed, *after], after, strict=False)]
    return {"replaced_s": replaced, "longest_gap_s": max(gaps), "failures": failures}


async def run(cost_s: float, jobs: int, clients_per_replica: int, latency_runs: int) -> dict[str, Any]:
    from ray import serve

    from worker.ray_serve import APP_NAME, build_app, deploy, undeploy

    results: dict[str, Any] = {"rate": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        results["in_process_ms"] = await in_process_ms(cache, cost_s, latency_runs)
        port = free_port()
        first = settings_for(cache, 1, port)
        url = await asyncio.to_thread(deploy, first, None, make_engine(cost_s))
        try:
            for replicas in (1, 2, 3, 4):
                settings = settings_for(cache, replicas, port)
                if replicas > 1:
                    await asyncio.to_thread(serve.delete, APP_NAME)  # frees the gateway's port
                    app = build_app(settings, make_engine(cost_s))
                    await asyncio.to_thread(serve.run, app, name=APP_NAME, route_prefix=None)
                await wait_healthy(url)
                if replicas == 1:
                    results["serve_ms"] = await latency_ms(url, latency_runs)
                results["rate"][replicas] = await throughput(url, jobs * replicas, clients_per_replica * replicas)
                if replicas == 2:
                    results["recovery"] = await recovery(url, clients_per_replica * 2, jobs * 3)
        finally:
            await asyncio.to_thread(undeploy, first)
    return results


async def wait_healthy(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/healthz") as resp:
                    if resp.status == 200 and (await resp.json())["status"] == "ok":
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


def table(results: dict[str, Any], cost_s: float, command: str) -> str:
    base = results["rate"][1]
    rows = [
        f"| {n} | {rate:.2f} | {rate / base:.2f}× | {0.9 * n:.1f}× | {n / cost_s:.2f} | "
        f"{'met' if rate / base >= 0.9 * n else 'not met'} |"
        for n, rate in results["rate"].items()
    ]
    rec = results["recovery"]
    added = results["serve_ms"] - results["in_process_ms"]
    return "\n".join([
        "## Scaling out on Ray Serve (issue: scale out on Ray Serve)",
        "",
        f"- Device: {device()}; Ray Serve 2.60.0; {dt.date.today().isoformat()}.",
        f"- Command: `{command}`.",
        f"- Each replica renders with a fixed cost of {cost_s:.2f} s per job (a sleep: simulated GPU time that",
        "  frees the CPU), so the figures show the gateway's, Serve's and the replicas' schedulers' overhead.",
        "  Closed-loop clients from 8 users, 4 per replica; one job per batch.",
        "",
        "| replicas N | jobs/s | vs N = 1 | goal (0.9·N) | ideal jobs/s | goal |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "| one request at a time, N = 1 | median |",
        "|---|---|",
        f"| in process (`egaku worker`) | {results['in_process_ms']:.1f} ms |",
        f"| through the gateway and a Serve replica (`egaku serve`) | {results['serve_ms']:.1f} ms |",
        f"| added by Serve | {added:.1f} ms |",
        "",
        "| one of 2 replicas SIGKILLed under load | |",
        "|---|---|",
        f"| requests that failed | {rec['failures']} |",
        f"| longest wait between answers after the kill | {rec['longest_gap_s']:.2f} s |",
        f"| until a replacement replica answers | {rec['replaced_s']:.1f} s |",
    ])  # fmt: skip


def main() -> None:
    """Run the scaling benchmark."""
    loopback_only("benchmarks.serve_scaling")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cost", type=float, default=0.25, help="seconds per job on a replica (simulated GPU)")
    parser.add_argument("--jobs", type=int, default=40, help="jobs per replica per throughput run")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop clients per replica")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--write", type=Path, help="write the figures into this markdown file")
    args = parser.parse_args()
    results = asyncio.run(run(args.cost, args.jobs, args.clients, args.latency_runs))
    command = f"python -m benchmarks.serve_scaling --cost {args.cost} --jobs {args.jobs} --clients {args.clients}"
    text = table(results, args.cost, command)
    print(text)
    if args.write:
        write_section(args.write, "serve_scaling", text)


if __name__ == "__main__":
    main()
