"""A worker that breaks the connection in each way a real one can: reset, cut mid-stream, malformed events."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from tests.fakes.serving import serve

Break = Literal["reset", "cut", "malformed", "garbage"]


class BrokenWorker:
    """Accepts `/v1/images/generations` and `/edits`, then breaks as told (`how`)."""

    def __init__(self, how: Break = "cut") -> None:
        self.how: Break = how
        self.calls = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Serve on a free loopback port."""
        app = web.Application()
        app.router.add_post("/v1/images/generations", self._answer)
        app.router.add_post("/v1/images/edits", self._answer)
        self._runner, port = await serve(app)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        await request.read()
        if self.how == "reset":
            assert request.transport is not None
            request.transport.abort()  # the process died before answering
            return web.Response()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'event: queued\ndata: {"job_id": "j", "position": 1, "eta_s": 1.0}\n\n')
        if self.how == "cut":
            assert request.transport is not None
            request.transport.abort()  # killed while streaming progress: a chunked body cut short
            return resp
        if self.how == "malformed":
            await resp.write(b"event: step\ndata: {not json\n\n")
        else:
            await resp.write(b"event: completed\ndata: \xff\xfe<html>\n\n")
        await resp.write_eof()
        return resp
