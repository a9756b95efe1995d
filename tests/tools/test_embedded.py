"""The embedded worker: a real `egaku worker` subprocess, watched and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp

from tools.backends.embedded import EmbeddedWorker
from tools.backends.worker_client import WorkerClient
from worker.protocol import GenerationRequest


def write_config(tmp_path: Path, cache: Path) -> Path:
    path = tmp_path / "egaku.toml"
    path.write_text(
        f"""
[backend]
mode = "embedded"
[worker]
cache_dir = "{cache}"
device = "cpu"
[worker.models.tiny]
source = "tiny"
steps = 2
width = 64
height = 64
""",
        encoding="utf-8",
    )
    return path


async def test_worker_crash_is_survived_and_restarted(tmp_path: Path, worker_cache: Path) -> None:
    async with aiohttp.ClientSession() as session:
        embedded = EmbeddedWorker(
            write_config(tmp_path, worker_cache), session, log_path=tmp_path / "worker.log", startup_timeout_s=120
        )
        embedded.start()
        client = WorkerClient(session, embedded.url, token=embedded.token)
        try:
            first = await client.generate(GenerationRequest(prompt="a fox", seed=3))
            # A fresh token per run: nothing else on this machine (no web page either) can use the worker.
            async with session.get(await embedded.url() + "/v1/models") as resp:
                assert resp.status == 401
            assert len(embedded.token) >= 40
            pid = embedded.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # a crash, not a polite exit
            for _ in range(100):
                if embedded.pid not in (None, pid):
                    break
                await asyncio.sleep(0.1)
            second = await client.generate(GenerationRequest(prompt="a fox", seed=3))
            assert embedded.pid not in (None, pid)
        finally:
            await embedded.stop()
    assert first[0].png == second[0].png  # same seed, same pixels, across processes
    assert embedded.pid is None
    assert "worker listening on http://127.0.0.1:" in (tmp_path / "worker.log").read_text()
