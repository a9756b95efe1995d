"""Serving an aiohttp app on a free loopback port, for every fake."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start app on 127.0.0.1 and a free port; return the runner and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # A fake has nothing to finish gracefully: a handler still sleeping (a slow model) is cut at stop.
    site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=0.5)
    await site.start()
    port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    return runner, port
