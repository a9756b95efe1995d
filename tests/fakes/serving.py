"""Serving an aiohttp app on a free loopback port, for every fake; the real worker served; reading its events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """Start app on 127.0.0.1 and `port` (0: a free one); return the runner and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # A fake has nothing to finish gracefully: a handler still sleeping (a slow model) is cut at stop.
    site = web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=0.5)
    await site.start()
    port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    return runner, port


async def wait_until_ready(url: str) -> None:
    """Wait until the worker at url says it is ready (the default preset loads at start-up: slow when loaded)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            async with session.get(url + "/healthz") as resp:
                if (await resp.json())["status"] == "ok":
                    return
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serving_worker(engine: object, settings: Any) -> AsyncIterator[str]:
    """The real worker HTTP server over an engine, once it says it is ready; its base URL."""
    from worker.http import WorkerServer

    server = WorkerServer(engine, settings, token=None)  # type: ignore[arg-type]
    runner, port = await serve(server.app())
    url = f"http://127.0.0.1:{port}"
    await wait_until_ready(url)
    try:
        yield url
    finally:
        await runner.cleanup()


async def sse(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a Server-Sent Events answer, as they arrive."""
    assert resp.status == 200, await resp.text()
    kind = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


@contextlib.asynccontextmanager
async def loading_worker(settings: Any) -> AsyncIterator[str]:
    """The real worker HTTP server whose default model never finishes loading (until it stops); its URL."""
    import threading

    from worker.engine import Engine
    from worker.errors import ModelUnavailable
    from worker.http.server import WorkerServer

    release = threading.Event()

    def never_loads(*_args: object) -> object:
        release.wait(60)
        raise ModelUnavailable("the test is over")

    server = WorkerServer(Engine(settings, loader=never_loads), settings, token=None)
    runner, port = await serve(server.app())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()
