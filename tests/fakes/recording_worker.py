"""A recording proxy in front of the real worker: tests assert exactly what the worker received."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.serving import serve


@dataclass
class Received:
    """One request as the worker got it."""

    path: str
    fields: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # part name -> sha256 of the bytes
    parts: list[tuple[str, str]] = field(default_factory=list)  # every file part in order: (name, sha256)
    answer: dict[str, Any] = field(default_factory=dict)  # the worker's JSON answer, images left out


class RecordingWorker:
    """Forwards to `target` and records each request."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.received: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Serve on a free loopback port."""
        app = web.Application(client_max_size=32 << 20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner, port = await serve(app)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        recorded = request.method == "POST" and request.path.startswith(("/v1/images/", "/v1/concepts/train"))
        received = await self._parse(request, body) if recorded else None
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, self.target + request.path_qs, data=body, headers=headers) as resp,
        ):
            answer = await resp.read()
            status, content_type = resp.status, resp.content_type
        if received is not None:
            parsed = _final_json(answer, content_type)
            for item in parsed.get("data", []):
                # The bytes stay out of the record; their hash stays in, so tests can tell which image was posted.
                item["sha256"] = hashlib.sha256(base64.b64decode(item.pop("b64_json", "") or "")).hexdigest()
            received.answer = parsed
            self.received.append(received)
        return web.Response(body=answer, status=status, content_type=content_type)

    async def _parse(self, request: web.Request, body: bytes) -> Received:
        if not request.content_type.startswith("multipart/"):
            return Received(request.path, json.loads(body))
        head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=default).parsebytes(head + body)
        fields: dict[str, Any] = {}
        files: dict[str, str] = {}
        parts: list[tuple[str, str]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if part.get_filename():
                files[str(name)] = hashlib.sha256(data).hexdigest()
                parts.append((str(name), files[str(name)]))
            else:
                fields[str(name)] = data.decode()
        return Received(request.path, fields, files, parts)


def _final_json(answer: bytes, content_type: str) -> dict[str, Any]:
    """The JSON answer, or the `completed` event's data of a progress stream."""
    if content_type == "application/json":
        return dict(json.loads(answer))
    if content_type == "text/event-stream":
        for block in answer.decode().split("\n\n"):
            if block.startswith("event: completed\n"):
                return dict(json.loads(block.split("\ndata: ", 1)[1]))
    return {}
