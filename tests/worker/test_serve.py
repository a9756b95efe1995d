"""The worker on Ray Serve: a local cluster on loopback, 2 tiny-model replicas behind the gateway.

One cluster per module (starting Ray and two replicas that import torch costs most of this
module's time). The replicas get fractional CPUs and no GPU, and one torch thread each.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from ray import serve

from tests.conftest import tiny_worker_settings
from tests.fakes.serving import sse
from tools.worker_client import WorkerClient
from worker.protocol import GenerationRequest, ProgressEvent
from worker.serve import APP_NAME, deploy, undeploy
from worker.settings import ServeSettings, WorkerSettings

HOG, LIGHT = "hog", ("ann", "bob", "cy", "dee")
STEPS_LONG = 60  # a render that outlasts the other 22 requests reaching the replicas


def free_port() -> int:
    """A free loopback port for the gateway."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_settings(cache: Path) -> WorkerSettings:
    """Tiny presets; one job per batch, so that the start order shows the scheduler's choices."""
    return tiny_worker_settings(
        cache,
        port=free_port(),
        max_batch=1,
        warmup=False,
        serve=ServeSettings(
            replicas=2, num_gpus=0, num_cpus=0.5, gateway_cpus=0.25, torch_threads=1, max_models_per_replica=1,
            health_check_period_s=1.0,
        ),
    )  # fmt: skip


@pytest.fixture(scope="module")
def gateway(worker_cache: Path) -> Iterator[str]:
    """A local Ray cluster on 127.0.0.1 with the egaku app deployed; yields the gateway's URL."""
    settings = serve_settings(worker_cache)
    try:
        yield deploy(settings, num_cpus=2)
    finally:
        undeploy(settings)


async def stream(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> list[tuple[str, dict]]:
    """POST a streamed generation; every (event, data) in order."""
    async with session.post(
        url + "/v1/images/generations", json={**body, "stream": True, "stream_format": "egaku"}
    ) as resp:
        return [event async for event in sse(resp)]


async def wait_for(predicate: Any, interval_s: float = 0.05) -> None:
    """Poll until predicate() is true (pytest-timeout bounds it)."""
    while not predicate():
        await asyncio.sleep(interval_s)


async def replica_pids(expected: int) -> dict[str, int]:
    """Replica id → process id, asking until `expected` replicas have answered."""
    handle = serve.get_deployment_handle("Renderer", app_name=APP_NAME)
    seen: dict[str, int] = {}
    while len(seen) < expected:
        replica, pid = await handle.whoami.remote()
        seen[replica] = pid
    return seen


async def test_health_and_models_on_the_front(gateway: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway + "/healthz") as resp:
            assert await resp.json() == {"status": "ok", "models": ["tiny", "tiny-alt"]}
        async with session.get(gateway + "/metrics") as resp:
            assert "egaku_ready 1" in await resp.text()


async def test_replica_killed_mid_batch_every_job_answered_once_and_fairly(gateway: str) -> None:
    """24 jobs from 5 users; one replica is SIGKILLed while it renders. Nothing lost, nothing twice."""
    pids = await replica_pids(2)
    results: dict[str, list[tuple[str, dict]]] = {}
    starts: list[tuple[str, str]] = []  # (job id, replica) in the order the starts arrive
    queued: set[str] = set()

    async def one(session: aiohttp.ClientSession, user: str, job_id: str, steps: int = 3) -> None:
        body = {"prompt": f"a fox for {user}", "user": user, "job_id": job_id, "seed": 1, "steps": steps}
        events: list[tuple[str, dict]] = []
        async with session.post(
            gateway + "/v1/images/generations", json={**body, "stream": True, "stream_format": "egaku"}
        ) as resp:
            async for kind, data in sse(resp):
                events.append((kind, data))
                if kind == "queued":
                    queued.add(job_id)
                elif kind == "started":
                    starts.append((job_id, data["replica"]))
        results[job_id] = events

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=240)) as session:
        # The hog queues 12 jobs first; then four people ask for 3 each. The hog's first two are long,
        # so that both replicas are busy while everyone else queues: the order in which the rest start
        # is then the scheduler's choice, not a race with the clients.
        hog_ids = [f"{HOG}-{i}" for i in range(12)]
        tasks = [asyncio.create_task(one(session, HOG, job_id, steps=STEPS_LONG)) for job_id in hog_ids[:2]]
        await wait_for(lambda: len(starts) == 2)
        tasks += [asyncio.create_task(one(session, HOG, job_id)) for job_id in hog_ids[2:]]
        await wait_for(lambda: len(queued) == len(hog_ids))
        light_ids = [f"{user}-{i}" for i in range(3) for user in LIGHT]
        tasks += [asyncio.create_task(one(session, job_id.split("-")[0], job_id)) for job_id in light_ids]
        await wait_for(lambda: len(queued) == 24)
        waiting_hog = set(hog_ids) - {job_id for job_id, _replica in starts}
        # Kill a replica while it renders a job (its start has arrived, its answer has not).
        await wait_for(lambda: len(starts) >= 4)
        victim_job, victim = starts[-1]
        os.kill(pids[victim], signal.SIGKILL)
        await asyncio.gather(*tasks)

    # Every job answered exactly once, with its own id, and nothing failed.
    assert sorted(results) == sorted(hog_ids + light_ids)
    for job_id, events in results.items():
        finals = [(kind, data) for kind, data in events if kind in ("completed", "error")]
        assert len(finals) == 1 and finals[0][0] == "completed", (job_id, finals)
        assert finals[0][1]["job_id"] == job_id and len(finals[0][1]["data"]) == 1
        assert events[-1][0] == "completed"
    # The killed replica's jobs ran again elsewhere: they were queued again after their start.
    rerun = [j for j, events in results.items() if [k for k, _ in events].count("queued") > 1]
    assert victim_job in rerun
    # Fairness across users: the four people with 3 jobs each did not wait behind the hog's 12.
    # First come, first served would start all the hog's waiting jobs before any of theirs; the fair
    # queue gives each user a turn in every round, so theirs start earlier on average and the hog's last.
    last_start = {job_id: index for index, (job_id, _replica) in enumerate(starts)}
    order = sorted(last_start, key=last_start.__getitem__)
    assert len(waiting_hog) >= 8, order
    light_mean = sum(last_start[j] for j in light_ids) / len(light_ids)
    hog_mean = sum(last_start[j] for j in waiting_hog) / len(waiting_hog)
    assert light_mean < hog_mean - 3, (order, sorted(waiting_hog))
    assert order[-1].startswith(HOG), order
    # A replacement replica comes up, and the dead one is gone.
    replaced = await replica_pids(2)
    assert victim not in replaced and len(set(replaced.values()) - set(pids.values())) == 1
    async with aiohttp.ClientSession() as session, session.get(gateway + "/metrics") as resp:
        metrics = await resp.text()
    assert 'egaku_jobs_total{outcome="completed"} 24' in metrics
    assert 'egaku_jobs_total{outcome="failed"} 0' in metrics


async def test_progress_with_previews_and_cancel_by_id_through_serve(gateway: str) -> None:
    async with aiohttp.ClientSession() as session:
        events = await stream(session, gateway, {"prompt": "a fox", "user": "amy", "job_id": "progress-1", "steps": 3})
        kinds = [kind for kind, _ in events]
        assert kinds[0] == "queued" and kinds[-1] == "completed" and "started" in kinds
        assert [data["step"] for kind, data in events if kind == "step"] == [1, 2, 3]
        previews = [data for kind, data in events if kind == "preview"]
        assert [p["step"] for p in previews] == [1, 2]  # every step but the last (preview_every=1)
        assert Image.open(io.BytesIO(base64.b64decode(previews[0]["b64_png"]))).format == "PNG"

        # A long job, cancelled by id through the gateway while a replica renders it.
        body = {
            "prompt": "a slow fox",
            "user": "amy",
            "job_id": "cancel-me",
            "steps": 150,
            "stream": True,
            "stream_format": "egaku",
        }
        seen: list[tuple[str, dict]] = []
        async with session.post(gateway + "/v1/images/generations", json=body) as resp:
            async for kind, data in sse(resp):
                seen.append((kind, data))
                if kind == "step" and data["step"] == 2:
                    async with session.get(gateway + "/v1/images/jobs/cancel-me") as status:
                        assert (await status.json())["position"] == 0
                    async with session.delete(gateway + "/v1/images/jobs/cancel-me") as cancelled:
                        assert cancelled.status == 200
        final_kind, final = seen[-1]
        assert final_kind == "error" and final["error"]["code"] == "cancelled"
        assert max(d["step"] for k, d in seen if k == "step") < 150
        async with session.delete(gateway + "/v1/images/jobs/cancel-me") as gone:
            assert gone.status == 404


async def test_two_presets_multiplexed_each_served_by_its_own_model(gateway: str) -> None:
    async with aiohttp.ClientSession() as session:
        for model in ("tiny-alt", "tiny", "tiny-alt", "tiny"):
            async with session.post(
                gateway + "/v1/images/generations", json={"prompt": "a fox", "model": model, "user": "mux"}
            ) as resp:
                body = await resp.json()
            used = body["data"][0]["parameters"]
            assert (used["model"], used["steps"]) == (model, {"tiny": 2, "tiny-alt": 3}[model])
    # Each replica holds at most max_models_per_replica (1) presets; between them, both are served.
    handle = serve.get_deployment_handle("Renderer", app_name=APP_NAME)
    held = [await handle.models.remote() for _ in range(8)]
    assert all(len(models) <= 1 for models in held), held


async def test_the_bots_worker_client_needs_only_the_url(gateway: str) -> None:
    """The bot's own client, pointed at the gateway: images, progress, health, cancel of an unknown id."""
    kinds: list[str] = []

    async def on_progress(event: ProgressEvent) -> None:
        kinds.append(event.kind)

    async with aiohttp.ClientSession() as session:
        client = WorkerClient(session, gateway)
        request = GenerationRequest(prompt="a fox", seed=5, user="bot", job_id="bot-1")
        (image,) = await client.generate(request, "draw a fox", on_progress)
        assert (image.seed, image.model, image.width, image.user_words) == (5, "tiny", 64, "draw a fox")
        assert kinds[0] == "queued" and "started" in kinds and "step" in kinds
        assert (await client.health()).status == "ok"
        assert await client.cancel("no-such-job") is False
