"""The HTTP client for the worker: typed requests out, typed images back."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from pydantic import ValidationError

from egaku.errors import STATUS_OF_CODE, WorkerFailed, WorkerLost, WorkerUnavailable, safe_detail
from tools.backends.answers import error_for
from tools.backends.base import ImageEdit, ImageUpscale, ProgressCallback, Upscaled
from tools.pictures import RenderedImage
from worker.protocol import (
    DescriptionResponse,
    GenerationRequest,
    GenerationResponse,
    HealthResponse,
    ProgressEvent,
    TeachRequest,
    TeachResponse,
    UpscaleResponse,
    parse_size,
)

log = logging.getLogger(__name__)

BeforeRequest = Callable[[], Awaitable[str]]


class WorkerClient:
    """Talks to one worker over HTTP, through the process's one aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: BeforeRequest | str,
        *,
        token: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self._session = session
        # An embedded worker's address is only known once it runs (and may change
        # after a restart), so the URL can be a coroutine asked before each call.
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)

    async def _url(self, path: str) -> str:
        base = self._base_url if isinstance(self._base_url, str) else await self._base_url()
        return base.rstrip("/") + path

    async def health(self) -> HealthResponse:
        """GET /healthz."""
        url = await self._url("/healthz")
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return HealthResponse.model_validate_json(await resp.read())
        except (aiohttp.ClientError, TimeoutError, ValidationError) as exc:
            raise WorkerUnavailable(f"health check failed: {safe_detail(exc)}") from exc

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """POST /v1/images/generations (streamed when on_progress is given) and decode the images."""
        body = request.model_dump(exclude_none=True, exclude_unset=True)
        if on_progress is not None:
            body.update(stream=True, stream_format="egaku")  # egaku's progress events, not OpenAI's
        return await self._call("/v1/images/generations", on_progress, json=body)

    async def edit(self, edit: ImageEdit, on_progress: ProgressCallback | None = None) -> list[RenderedImage]:
        """POST /v1/images/edits (multipart: the picture, then its references) and decode the images."""
        form = aiohttp.FormData()
        for field, data, filename in edit.parts():
            form.add_field(field, data, filename=filename, content_type="image/png")
        fields = edit.request.model_dump(exclude_none=True, exclude_unset=True)
        if edit.mask is not None:
            form.add_field("mask", edit.mask, filename="mask.png", content_type="image/png")
            fields["mask_format"] = "luminance"  # egaku's masks are white where to paint, not OpenAI's alpha
        if on_progress is not None:
            fields.update(stream=True, stream_format="egaku")
        for key, value in fields.items():
            form.add_field(key, json.dumps(value) if isinstance(value, list | dict | bool) else str(value))
        return await self._call("/v1/images/edits", on_progress, data=form)

    async def upscale(self, upscale: ImageUpscale) -> Upscaled:
        """POST /v1/images/upscales (multipart): the picture enlarged by the worker's upscaler."""
        form = aiohttp.FormData()
        form.add_field("image", upscale.image, filename="image.png", content_type="image/png")
        for key, value in upscale.request.model_dump(exclude_none=True, exclude_unset=True).items():
            form.add_field(key, str(value))
        raw = await self._post("/v1/images/upscales", None, data=form)
        try:
            answer = UpscaleResponse.model_validate_json(raw)
            size = parse_size(answer.size)
            png = base64.b64decode(answer.data[0].b64_json, validate=True)
        except (ValidationError, ValueError, IndexError) as exc:  # binascii.Error is a ValueError
            raise WorkerFailed(f"worker sent an unreadable upscale: {safe_detail(exc)}") from exc
        return Upscaled(png=png, width=size.width, height=size.height, upscaler=answer.model)

    async def upscaler(self) -> str | None:
        """The worker's upscaler by name, as its /healthz says; None when it has none."""
        return (await self.health()).upscaler

    async def train(
        self, request: TeachRequest, images: Sequence[bytes], on_progress: ProgressCallback | None = None
    ) -> TeachResponse:
        """POST /v1/concepts/train (multipart, streamed when on_progress is given): a word learned from pictures."""
        form = aiohttp.FormData()
        for n, image in enumerate(images):
            form.add_field("image[]", image, filename=f"picture-{n}.png", content_type="image/png")
        fields = request.model_dump(exclude_none=True, exclude_unset=True)
        if on_progress is not None:
            fields["stream"] = True
        for key, value in fields.items():
            form.add_field(key, json.dumps(value) if isinstance(value, bool) else str(value))
        raw = await self._post("/v1/concepts/train", on_progress, data=form)
        try:
            return TeachResponse.model_validate_json(raw)
        except ValidationError as exc:
            raise WorkerFailed(f"worker sent an unreadable training result: {safe_detail(exc)}") from exc

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when the worker no longer has it."""
        url = await self._url(f"/v1/images/jobs/{job_id}")
        try:
            async with self._session.delete(url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=10)) as r:
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"cancel failed: {safe_detail(exc)}") from exc

    async def describe(self, image: bytes) -> str:
        """POST /v1/images/descriptions: an English prompt for a picture (/describe)."""
        form = aiohttp.FormData()
        form.add_field("image", image, filename="image.png", content_type="image/png")
        raw = await self._post("/v1/images/descriptions", None, data=form)
        try:
            return DescriptionResponse.model_validate_json(raw).prompt
        except ValidationError as exc:
            raise WorkerFailed(f"worker sent an unreadable description: {safe_detail(exc)}") from exc

    async def _post(self, path: str, on_progress: ProgressCallback | None, **body: Any) -> bytes:
        """POST to the worker; the final body of a 200 (streamed or not), or the matching EgakuError."""
        url = await self._url(path)
        try:
            async with self._session.post(url, headers=self._headers, timeout=self._timeout, **body) as resp:
                if resp.status == 200 and resp.content_type == "text/event-stream":
                    status, raw = await _read_stream(resp, on_progress)
                else:
                    status, raw = resp.status, await resp.read()
        except (aiohttp.ClientConnectorError, TimeoutError) as exc:
            raise WorkerUnavailable(f"worker at {url} unreachable: {safe_detail(exc)}") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            # Reset, cut mid-stream (ClientPayloadError), or bytes that are not events: the worker
            # took the job and then went away. An image-service failure, never the catch-all.
            raise WorkerLost(f"connection to the worker at {url} broke: {safe_detail(exc)}") from exc
        if status != 200:
            raise error_for(status, raw)
        return raw

    async def _call(self, path: str, on_progress: ProgressCallback | None, **body: Any) -> list[RenderedImage]:
        raw = await self._post(path, on_progress, **body)
        try:
            parsed = GenerationResponse.model_validate_json(raw)
        except ValidationError as exc:
            raise WorkerFailed(f"worker sent an unreadable response: {safe_detail(exc)}") from exc
        images = [
            RenderedImage(
                png=base64.b64decode(item.b64_json or "", validate=True),
                prompt=item.revised_prompt or "",
                negative_prompt=item.parameters.negative_prompt,
                seed=item.parameters.seed,
                width=item.parameters.width,
                height=item.parameters.height,
                steps=item.parameters.steps,
                guidance=item.parameters.guidance,
                model=item.parameters.model,
                user_words="",  # the image service gives it the asker's words
                score=item.score,
            )
            for item in parsed.data
        ]
        if parsed.chosen is None:
            return images
        if not 0 <= parsed.chosen < len(images):
            raise WorkerFailed(f"worker chose candidate {parsed.chosen} of {len(images)}")
        # Best-of-N: the worker's pick is the one image; the others travel with it.
        best = images[parsed.chosen]
        return [replace(best, candidates=tuple(i for n, i in enumerate(images) if n != parsed.chosen))]


async def _read_stream(resp: aiohttp.ClientResponse, on_progress: ProgressCallback | None) -> tuple[int, bytes]:
    """Read Server-Sent Events: progress goes to the callback; returns the final status and body."""
    event, data = "", ""
    async for raw_line in resp.content:
        line = raw_line.decode("utf-8").rstrip("\r\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and event:
            if event == "completed":
                return 200, data.encode()
            if event == "error":
                error = _stream_error(data)
                status = 400 if error.get("type") == "invalid_request_error" else 500
                return STATUS_OF_CODE.get(str(error.get("code")), status), data.encode()
            if on_progress is not None:
                progress = _progress_event(event, data)
                if progress is not None:
                    await on_progress(progress)
            event, data = "", ""
    raise WorkerLost("the progress stream ended without a result")


def _progress_event(event: str, data: str) -> ProgressEvent | None:
    """A progress event; None for a kind this client does not know; a body that is not JSON breaks the stream."""
    try:
        fields = json.loads(data)
    except ValueError as exc:
        raise WorkerLost(f"malformed {event} event: {data[:200]!r}") from exc
    if not isinstance(fields, dict):
        raise WorkerLost(f"malformed {event} event: {data[:200]!r}")
    try:
        return ProgressEvent.model_validate({"kind": event, **fields})
    except ValidationError:
        return None  # a newer worker's event: progress is a courtesy


def _stream_error(data: str) -> dict[str, Any]:
    """The `error` object of an error event; a malformed one is a broken stream."""
    try:
        error = json.loads(data)["error"]
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkerLost(f"malformed error event: {data[:200]!r}") from exc
    if not isinstance(error, dict):
        raise WorkerLost(f"malformed error event: {data[:200]!r}")
    return error
