"""A job's progress and outcome as Server-Sent Events: egaku's own stream, or OpenAI's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel

from worker.errors import WorkerError
from worker.http.answers import as_worker_error, error_body
from worker.protocol import GenerationResponse, OpenAIStreamEvent, Usage, image_tokens
from worker.scheduler import Job, Progress

SSE = tuple[str, dict[str, Any]]


class StreamShape(Protocol):
    """How a job's progress and outcome are written as Server-Sent Events."""

    def progress(self, event: Progress) -> list[SSE]: ...

    def completed(self, outcome: Any) -> list[SSE]: ...

    def error(self, exc: WorkerError) -> list[SSE]: ...


class Waits(Protocol):
    """What the egaku stream asks the queue: a wait estimate for a position."""

    def eta_s(self, position: int) -> float: ...


class EgakuEvents:
    """egaku's progress stream: queued, started, step, preview, then completed (the whole body) or error."""

    def __init__(self, queue: Waits) -> None:
        self._queue = queue

    def progress(self, event: Progress) -> list[SSE]:
        """Queue position (with an ETA), steps and previews; OpenAI's partial images are not for this stream."""
        if event.kind == "partial":
            return []
        if event.kind == "queued" and "eta_s" not in event.data:  # a training job brings its own
            event.data["eta_s"] = round(self._queue.eta_s(event.data["position"]), 3)
        return [(event.kind, event.data)]

    def completed(self, outcome: BaseModel) -> list[SSE]:
        """The 200 body as one event."""
        return [("completed", outcome.model_dump())]

    def error(self, exc: WorkerError) -> list[SSE]:
        """The error body as one event."""
        return [("error", error_body(exc).model_dump())]


class OpenAIEvents:
    """OpenAI's stream: `<kind>.partial_image` events, then one `<kind>.completed` per image."""

    def __init__(self, kind: str, safety_identifier: str | None) -> None:
        self._kind = kind  # "image_generation" or "image_edit"
        self._safety_identifier = safety_identifier

    def progress(self, event: Progress) -> list[SSE]:
        """Only the partial images the request asked for."""
        if event.kind != "partial":
            return []
        body = OpenAIStreamEvent(type=f"{self._kind}.partial_image", created_at=int(time.time()), **event.data)  # type: ignore[arg-type]
        return [(body.type, body.model_dump(exclude_none=True))]

    def completed(self, outcome: GenerationResponse) -> list[SSE]:
        """One completed event per image, each with its own usage."""
        events: list[SSE] = []
        text = outcome.usage.input_tokens_details.text_tokens if outcome.usage else 0
        given = outcome.usage.input_tokens_details.image_tokens if outcome.usage else 0
        for item in outcome.data:
            assert item.b64_json is not None
            used = item.parameters
            body = OpenAIStreamEvent(
                type=f"{self._kind}.completed",  # type: ignore[arg-type]
                b64_json=item.b64_json,
                background="opaque",
                created_at=outcome.created,
                output_format=outcome.output_format,
                quality=outcome.quality or "auto",
                size=f"{used.width}x{used.height}",
                usage=Usage.of(text, given, image_tokens(used.width, used.height)),
                safety_identifier=self._safety_identifier,
            )
            events.append((body.type, body.model_dump(exclude_none=True)))
        return events

    def error(self, exc: WorkerError) -> list[SSE]:
        """OpenAI's stream error: the official client raises it as an APIError."""
        return [("error", {"type": "error", **error_body(exc).model_dump()})]


async def send(response: web.StreamResponse, events: list[SSE]) -> None:
    """Write events to an open stream."""
    for event, data in events:
        await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


async def stream_job(
    request: web.Request,
    job: Job[Any],
    shape: StreamShape,
    settled: Awaitable[Any],
    cancel: Callable[[str], bool],
    *,
    keep: bool = False,
) -> web.StreamResponse:
    """Write a job's progress, then its outcome (`settled`), as events; a leaving client cancels it unless `keep`."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    outcome = asyncio.ensure_future(settled)
    events = job.events  # this client's own queue: one that attaches later gets another
    assert events is not None
    try:
        while True:
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait({getter, outcome}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await send(response, shape.progress(getter.result()))
                continue
            getter.cancel()
            while not events.empty():
                await send(response, shape.progress(events.get_nowait()))
            try:
                await send(response, shape.completed(outcome.result()))
            except Exception as exc:  # the headers are sent: a failure can only be an event now
                await send(response, shape.error(as_worker_error(exc)))
            break
    except ConnectionResetError:
        if not keep:
            cancel(job.id)  # the client went away: nobody will see the result, so stop working on it
    finally:
        outcome.cancel()
    with contextlib.suppress(ConnectionResetError):  # a client gone with a kept job: nobody reads the end
        await response.write_eof()
    return response
