"""Runs the worker as a supervised subprocess of the bot (the embedded default).

torch stays out of the bot process: the worker is `python -m egaku worker` in
its own process, and a crash there only costs the jobs in flight. A watchdog
restarts it with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sys
import time
from pathlib import Path

import aiohttp

from egaku.errors import WorkerUnavailable

log = logging.getLogger(__name__)

# The environment variable that carries the per-run token to the worker process (never its command line).
TOKEN_ENV = "EGAKU_EMBEDDED_WORKER_TOKEN"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedWorker:
    """Starts, watches and stops one local worker process."""

    def __init__(
        self,
        config_path: Path,
        session: aiohttp.ClientSession,
        *,
        log_path: Path,
        startup_timeout_s: float = 600.0,
        python: str = sys.executable,
    ) -> None:
        self._config_path = config_path
        self._session = session
        self._log_path = log_path
        self._startup_timeout_s = startup_timeout_s
        self._python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._url: str | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._watchdog: asyncio.Task[None] | None = None
        # A fresh token per run: no other program on this machine, and no web page, can use this worker.
        self.token = secrets.token_urlsafe(32)

    @property
    def pid(self) -> int | None:
        """The worker process id, while it runs."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    def start(self) -> None:
        """Start the worker in the background; `url()` waits until it is healthy."""
        self._watchdog = asyncio.create_task(self._supervise(), name="worker-supervisor")

    async def url(self) -> str:
        """The worker's URL once it is healthy (waits during a restart)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=self._startup_timeout_s)
        except TimeoutError as exc:
            raise WorkerUnavailable("the embedded worker did not become healthy") from exc
        assert self._url is not None
        return self._url

    async def _spawn(self) -> None:
        self._ready.clear()
        port = free_port()
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log_file:
            self._proc = await asyncio.create_subprocess_exec(
                self._python, "-m", "egaku", "worker",
                "--config", str(self._config_path),
                "--host", "127.0.0.1", "--port", str(port), "--parent-pid", str(os.getpid()),
                "--token-env", TOKEN_ENV,
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                env={**os.environ, TOKEN_ENV: self.token},
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        log.info("embedded worker pid %s starting on %s (log: %s)", self._proc.pid, url, self._log_path)
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise WorkerUnavailable(
                    f"the embedded worker exited with {self._proc.returncode}; see {self._log_path}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200 and (await r.json()).get("status") == "ok":
                        self._url = url
                        self._ready.set()
                        log.info("embedded worker ready")
                        return
            await asyncio.sleep(0.25)
        self._proc.kill()
        raise WorkerUnavailable(f"the embedded worker did not start in {self._startup_timeout_s:.0f}s")

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping:
            try:
                await self._spawn()
                backoff = 1.0
            except WorkerUnavailable:
                log.exception("embedded worker failed to start")
            proc = self._proc
            if proc is not None:
                code = await proc.wait()
                if self._stopping:
                    return
                log.error("embedded worker exited with %s; restarting in %.0fs", code, backoff)
            self._ready.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def stop(self) -> None:
        """Stop the worker: SIGTERM, then SIGKILL after 10 s."""
        self._stopping = True
        if self._watchdog:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        proc = self._proc
        if proc and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
