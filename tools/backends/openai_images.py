"""OpenAI's own Images API as egaku's image backend: an operator with no GPU draws with gpt-image or DALL-E.

It offers what the bot asks of its worker (`generate`, `edit`, `cancel`, `describe`) and
speaks OpenAI's documented API only. egaku's extensions mean nothing there, so each is
mapped or dropped here, never sent:

- `style` and `negative_prompt` are written into the prompt ("..., watercolour ... Avoid: blurry");
- `aspect` and `size` pick the model's nearest supported size by shape;
- `n` above 1 on dall-e-3 (which takes one per call) becomes several calls;
- `seed`, `steps`, `guidance`, `strength`, `job_id`, `priority` and `safety_check` are dropped
  (OpenAI moderates every request itself);
- a region edit by words (`mask_prompt`) becomes a whole-image edit with the full new description;
  a greyscale mask (white = paint) becomes OpenAI's alpha mask (transparent = paint);
- zoom, pan and the upscaler are egaku's own worker's: they are refused with a text that says so;
- the user's id goes as a hashed `safety_identifier`, as OpenAI asks;
- progress, when someone watches, is OpenAI's stream with partial images (gpt-image models, one
  image per request): each partial image becomes a small preview for the status message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import secrets
from typing import Any

import aiohttp
from PIL import Image
from pydantic import BaseModel, ValidationError

from egaku.config import OpenAIBackendSettings
from egaku.errors import EditNotPossible, WorkerFailed, WorkerRejected, WorkerUnavailable, safe_detail
from egaku.i18n import _
from tools.backends.answers import error_for
from tools.backends.base import ImageEdit, ImageUpscale, ProgressCallback, Upscaled
from tools.pictures import RenderedImage
from worker.protocol import (
    ASPECT_RATIOS,
    MAX_SEED,
    GenerationRequest,
    HealthResponse,
    ProgressEvent,
    parse_size,
    with_style,
)

log = logging.getLogger(__name__)

# The sizes each model family documents; other gpt-image names take gpt-image's.
SIZES: dict[str, tuple[str, ...]] = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536"),
}


PREVIEW_SIDE = 256  # partial images are full size; the status message shows a small preview

NO_OUTPAINTING = _(
    "Zoom out and pan need egaku's own worker: this bot draws with OpenAI's Images API, "
    "which cannot paint past a picture's edges."
)
NO_UPSCALER = _("The upscaler needs egaku's own worker: this bot draws with OpenAI's Images API, which has none.")


class _Item(BaseModel):
    b64_json: str | None = None
    revised_prompt: str | None = None


class _Answer(BaseModel):
    """The part of OpenAI's ImagesResponse egaku reads."""

    created: int
    data: list[_Item]


def sizes_for(model: str) -> tuple[str, ...]:
    """The sizes OpenAI documents for a model."""
    return SIZES.get(model, SIZES["gpt-image"])


def nearest_size(model: str, request: GenerationRequest) -> str:
    """The model's supported size closest in shape (then in area) to what egaku asked for."""
    if request.size and request.size != "auto":
        wanted = parse_size(request.size)
        width, height = wanted.width, wanted.height
    elif request.aspect:
        width, height = ASPECT_RATIOS[request.aspect]
    else:
        width, height = 1, 1
    shape = width / height

    def distance(size: str) -> tuple[float, float]:
        w, h = (int(side) for side in size.split("x"))
        return abs(w / h - shape), abs(w * h - width * height)

    return min(sizes_for(model), key=distance)


def alpha_mask(grey: bytes) -> bytes:
    """egaku's greyscale mask (white = paint) as OpenAI's (transparent = paint), a PNG."""
    mask = Image.open(io.BytesIO(grey)).convert("L")
    keep = mask.point(lambda v: 0 if v >= 128 else 255)
    out = Image.new("RGBA", mask.size, (0, 0, 0, 255))
    out.putalpha(keep)
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue()


def safety_identifier(user: str | None) -> str | None:
    """A stable hash of the user's id: OpenAI asks for one, and never for the id itself."""
    return hashlib.sha256(user.encode()).hexdigest()[:32] if user else None


class OpenAIImages:
    """Renders through OpenAI's Images API with the process's one aiohttp session."""

    def __init__(
        self, session: aiohttp.ClientSession, settings: OpenAIBackendSettings, api_key: str, *, timeout_s: float = 300.0
    ) -> None:
        self._session = session
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)

    @property
    def _model(self) -> str:
        return self._settings.model

    def _common(self, request: GenerationRequest) -> dict[str, Any]:
        """The documented fields every call carries, mapped from egaku's request."""
        if request.adapters:
            raise refused("LoRA adapters need egaku's own worker; OpenAI's API has none")
        if request.best_of > 1:
            raise refused("best-of needs egaku's own worker, which scores the candidates; OpenAI's API has none")
        if request.references:
            raise refused("a new picture drawn from pictures needs egaku's own worker; OpenAI's API edits them instead")
        prompt, negative = with_style(request.prompt, request.negative_prompt, request.style)
        if negative:
            prompt = f"{prompt}. Avoid: {negative}"
        fields: dict[str, Any] = {"model": self._model, "prompt": prompt, "size": nearest_size(self._model, request)}
        if self._model.startswith("dall-e"):
            fields["response_format"] = "b64_json"  # DALL-E answers with URLs otherwise
        else:
            fields["moderation"] = self._settings.moderation
        fields["quality"] = self._settings.quality
        fields["safety_identifier"] = safety_identifier(request.user)
        return {k: v for k, v in fields.items() if v is not None}

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """POST /images/generations; several calls of one image each where the model takes only one."""
        body = self._common(request)
        await _started(request, on_progress)
        if self._streams(request, on_progress):
            stream = {**body, "stream": True, "partial_images": self._settings.partial_images}
            items = (await self._post("/images/generations", on_progress, json=stream)).data
        elif self._model == "dall-e-3" and request.n > 1:
            answers = await asyncio.gather(*(self._post("/images/generations", json=body) for _ in range(request.n)))
            items = [item for answer in answers for item in answer.data]
        else:
            items = (await self._post("/images/generations", json={**body, "n": request.n})).data
        return await self._rendered(items, request, body["prompt"])

    async def edit(self, edit: ImageEdit, on_progress: ProgressCallback | None = None) -> list[RenderedImage]:
        """POST /images/edits (multipart): the pictures, the whole new description, and an alpha mask if any."""
        request, mask = edit.request, edit.mask
        if request.outpaints:
            raise EditNotPossible(NO_OUTPAINTING)  # sent on, zoom and pan would be dropped: a plain redraw
        if self._model == "dall-e-3":
            raise refused("dall-e-3 cannot edit images; set [backend.openai] model to a gpt-image model")
        if edit.references and self._model.startswith("dall-e"):
            raise refused(f"{self._model} edits one picture at a time; gpt-image models read several")
        fields = {**self._common(request), "n": request.n}
        streams = self._streams(request, on_progress)
        if streams:
            fields.update(stream="true", partial_images=self._settings.partial_images)
        form = aiohttp.FormData()
        # gpt-image models read several pictures, in order; the mask belongs to the first.
        for field, data, filename in edit.parts():
            form.add_field(field, data, filename=filename, content_type="image/png")
        if mask is not None:
            converted = await asyncio.to_thread(alpha_mask, mask)
            form.add_field("mask", converted, filename="mask.png", content_type="image/png")
        for key, value in fields.items():
            form.add_field(key, str(value))
        await _started(request, on_progress)
        answer = await self._post("/images/edits", on_progress if streams else None, data=form)
        return await self._rendered(answer.data, request, fields["prompt"])

    async def upscale(self, upscale: ImageUpscale) -> Upscaled:
        """OpenAI's Images API has no upscaler."""
        raise EditNotPossible(NO_UPSCALER)

    async def upscaler(self) -> str | None:
        """None: the plain upscale buttons fall back to the creative one (an edit at twice the size)."""
        return None

    async def cancel(self, job_id: str) -> bool:
        """OpenAI has no cancel; the bot then says the job could not be stopped."""
        return False

    async def describe(self, image: bytes) -> str:
        """/describe needs egaku's captioner; OpenAI's Images API has none."""
        raise refused("describing pictures needs egaku's own worker")

    async def health(self) -> HealthResponse:
        """GET /models/{model}: the key works and the model exists."""
        url = f"{self._base}/models/{self._model}"
        try:
            async with self._session.get(url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                ok = resp.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"OpenAI unreachable: {safe_detail(exc)}") from exc
        if not ok:
            raise WorkerUnavailable(f"OpenAI answered {resp.status} for model {self._model!r}")
        return HealthResponse(status="ok", models=[self._model])

    def _streams(self, request: GenerationRequest, on_progress: ProgressCallback | None) -> bool:
        """Stream when someone watches and the model can: gpt-image models, one image per request."""
        wanted = on_progress is not None and self._settings.partial_images > 0
        return wanted and not self._model.startswith("dall-e") and request.n == 1

    async def _post(self, path: str, on_progress: ProgressCallback | None = None, **body: Any) -> _Answer:
        url = self._base + path
        try:
            async with self._session.post(url, headers=self._headers, timeout=self._timeout, **body) as resp:
                if resp.status == 200 and resp.content_type == "text/event-stream":
                    return await _read_stream(resp, on_progress)
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailable(f"OpenAI at {url} unreachable: {safe_detail(exc)}") from exc
        if status != 200:
            raise error_for(status, raw)
        try:
            return _Answer.model_validate_json(raw)
        except ValidationError as exc:
            raise WorkerFailed(f"OpenAI sent an unreadable response: {safe_detail(exc)}") from exc

    async def _rendered(self, items: list[_Item], request: GenerationRequest, prompt: str) -> list[RenderedImage]:
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        images = []
        for index, item in enumerate(items):
            if not item.b64_json:
                raise WorkerFailed("OpenAI sent an image without b64_json")
            png, (width, height) = await asyncio.to_thread(_as_png, base64.b64decode(item.b64_json))
            images.append(
                RenderedImage(
                    png=png,
                    prompt=item.revised_prompt or prompt,
                    negative_prompt=request.negative_prompt,
                    seed=(seed + index) % (MAX_SEED + 1),  # no seeds at OpenAI: kept for egaku's history only
                    width=width,
                    height=height,
                    steps=0,
                    guidance=0.0,
                    model=self._model,
                    user_words="",  # the image service gives it the asker's words
                )
            )
        return images


async def _read_stream(resp: aiohttp.ClientResponse, on_progress: ProgressCallback | None) -> _Answer:
    """OpenAI's image stream: partial images become previews; the completed events are the answer."""
    items: list[_Item] = []
    async for raw_line in resp.content:
        line = raw_line.decode("utf-8").strip()
        if not line.startswith("data: "):
            continue  # `event:` lines repeat the data's own `type`
        event = json.loads(line[6:])
        kind = str(event.get("type", ""))
        if kind.endswith(".partial_image") and on_progress is not None:
            preview = await asyncio.to_thread(_preview, base64.b64decode(event["b64_json"]))
            await on_progress(ProgressEvent(kind="preview", b64_png=base64.b64encode(preview).decode("ascii")))
        elif kind.endswith(".completed"):
            items.append(_Item(b64_json=event["b64_json"]))
        elif "error" in event:
            status = 400 if event["error"].get("type") == "invalid_request_error" else 500
            raise error_for(status, json.dumps({"error": event["error"]}).encode())
    if not items:
        raise WorkerFailed("OpenAI's image stream ended without an image")
    return _Answer(created=0, data=items)


def _preview(data: bytes) -> bytes:
    """A partial image shrunk for the status message, as PNG."""
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _as_png(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """OpenAI's image as PNG (re-encoded only when it is not one already), and its size."""
    picture = Image.open(io.BytesIO(data))
    if picture.format == "PNG":
        return data, picture.size
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue(), picture.size


async def _started(request: GenerationRequest, on_progress: ProgressCallback | None) -> None:
    """The one progress event there is: the job went out (OpenAI reports no queue or steps)."""
    if on_progress is not None:
        await on_progress(ProgressEvent(kind="started", job_id=request.job_id, batch_size=request.n))


def refused(reason: str) -> WorkerRejected:
    """A refusal this backend writes itself: its reason is egaku's own words, fit for the model."""
    return WorkerRejected(reason, detail=reason)
