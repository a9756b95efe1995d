"""A worker that breaks the connection in each way a real one can (reset, cut mid-stream, malformed events).

`CuttingProxy` cuts a real worker's progress streams instead, as a worker killed mid-job would.
"""

from __future__ import annotations

from typing import Literal

import aiohttp
from aiohttp import web

from tests.fakes.recording_worker import RecordingWorker
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


class CuttingProxy(RecordingWorker):
    """Forwards to a real worker, and cuts the first `cuts` progress streams after their first event.

    From the client's side this is a worker killed, or a connection reset, while the job was in
    its queue: the worker itself still has the job. It records each request's body, not its answer.
    """

    def __init__(self, target: str, cuts: int = 1) -> None:
        super().__init__(target)
        self.cuts = cuts
        self.bodies: list[bytes] = []  # each request's body, in order

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, self.target + request.path_qs, data=body, headers=headers) as answer,
        ):
            if answer.content_type != "text/event-stream":
                return web.Response(body=await answer.read(), status=answer.status, content_type=answer.content_type)
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            cut = self.cuts > 0
            self.cuts -= cut
            async for chunk in answer.content.iter_any():
                await resp.write(chunk)
                if cut and b"\n\n" in chunk:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
            await resp.write_eof()
            return resp
