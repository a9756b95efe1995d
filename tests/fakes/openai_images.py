"""A strict local fake of OpenAI's Images API: it answers exactly as OpenAI documents, and no kinder.

It refuses what OpenAI refuses: parameters the API does not know (egaku's `seed`,
`steps`, `negative_prompt`...), `response_format` on gpt-image models, `n` above 1 on
dall-e-3, sizes a model does not offer, edits on dall-e-3, masks without an alpha channel
or of another size, and a missing or wrong key. Requests are recorded for exact assertions;
`fail_next` scripts an error answer.
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.serving import serve

GENERATION_FIELDS = {
    "prompt", "model", "n", "size", "quality", "response_format", "style", "background", "moderation",
    "output_format", "output_compression", "partial_images", "stream", "user", "safety_identifier", "complexity",
    "frame_count", "frame_duration_ms", "svg",
}  # fmt: skip
EDIT_FIELDS = {
    "prompt", "model", "n", "size", "quality", "response_format", "background", "input_fidelity", "output_format",
    "output_compression", "partial_images", "stream", "user", "safety_identifier", "complexity",
}  # fmt: skip
SIZES = {
    "dall-e-2": {"256x256", "512x512", "1024x1024"},
    "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"},
}
GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}


@dataclass
class Seen:
    """One request as OpenAI would have received it."""

    path: str
    fields: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    pictures: list[bytes] = field(default_factory=list)  # every `image` / `image[]` file, in order


class Refused(Exception):
    """An OpenAI error answer."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


class FakeOpenAIImages:
    """OpenAI's /v1/images/generations, /v1/images/edits and /v1/models/{id} on 127.0.0.1."""

    def __init__(self, api_key: str = "sk-images-test") -> None:
        self.api_key = api_key
        self.seen: list[Seen] = []
        self.fail_next: list[tuple[int, str, str | None]] = []  # (status, message, code)
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve on a free loopback port."""
        app = web.Application(middlewares=[self._errors])
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_get("/v1/models/{model}", self._model)
        self._runner, port = await serve(app)
        self.url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                raise Refused(401, "Incorrect API key provided.", code="invalid_api_key")
            if self.fail_next:
                status, message, code = self.fail_next.pop(0)
                raise Refused(status, message, code=code)
            return await handler(request)
        except Refused as exc:
            kind = "invalid_request_error" if exc.status < 500 else "server_error"
            body = {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": exc.code}}
            return web.Response(text=json.dumps(body), status=exc.status, content_type="application/json")

    async def _model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        if name not in (*SIZES, "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2"):
            raise Refused(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        body = {"id": name, "object": "model", "created": 1698785189, "owned_by": "system"}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _generations(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            raise Refused(400, "We could not parse the JSON body of your request.") from exc
        self.seen.append(Seen("/images/generations", body))
        _check(body, GENERATION_FIELDS)
        model = _model_of(body)
        if body.get("style") is not None and model != "dall-e-3":
            raise Refused(400, "Unknown parameter: 'style'.", param="style", code="unknown_parameter")
        if body.get("moderation") is not None and model.startswith("dall-e"):
            raise Refused(400, "Unknown parameter: 'moderation'.", param="moderation", code="unknown_parameter")
        return await _answer(request, model, body, "image_generation")

    async def _edits(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise Refused(400, "Invalid content type. Use multipart/form-data.")
        form = await request.post()
        fields: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        images: list[bytes] = []
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
                if key in ("image", "image[]"):
                    images.append(files[key])
            else:
                fields[key] = value
        self.seen.append(Seen("/images/edits", fields, files, images))
        _check(fields, EDIT_FIELDS)
        model = _model_of(fields)
        if model == "dall-e-3":
            raise Refused(400, "Invalid model dall-e-3. The model must be one of gpt-image-1, dall-e-2.", "model")
        if len(images) > (1 if model == "dall-e-2" else 16):  # OpenAI's documented limits
            raise Refused(400, f"Invalid 'image': too many images for {model}.", param="image")
        if not images:
            raise Refused(400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter")
        if "mask" in files:
            base = Image.open(io.BytesIO(images[0]))
            mask = Image.open(io.BytesIO(files["mask"]))
            if mask.mode not in ("RGBA", "LA"):
                raise Refused(400, f"Invalid mask: format must be in ['RGBA', 'LA'], got {mask.mode}.", "mask")
            if mask.size != base.size:
                raise Refused(400, "Invalid mask: the mask and the image must have the same dimensions.", "mask")
        return await _answer(request, model, fields, "image_edit")


def _check(body: dict[str, Any], known: set[str]) -> None:
    for key in body:
        if key not in known:
            raise Refused(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
    if not str(body.get("prompt", "")).strip():
        raise Refused(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")


def _model_of(body: dict[str, Any]) -> str:
    model = str(body.get("model") or "dall-e-2")
    n = int(body.get("n", 1))
    if model == "dall-e-3" and n != 1:
        raise Refused(400, "You must provide n=1 for this model.", param="n", code="invalid_value")
    if not 1 <= n <= 10:
        raise Refused(400, f"Invalid 'n': integer above maximum value. Expected a value <= 10, got {n}.", "n")
    size = str(body.get("size", "1024x1024"))
    offered = sorted(SIZES.get(model, GPT_IMAGE_SIZES))
    if size not in offered:
        raise Refused(400, f"Invalid value: '{size}'. Supported values are: {offered}.", param="size")
    if "response_format" in body and not model.startswith("dall-e"):
        raise Refused(400, "Unknown parameter: 'response_format'.", param="response_format", code="unknown_parameter")
    if len(str(body["prompt"])) > PROMPT_LIMITS.get(model, 32000):
        raise Refused(400, "Invalid 'prompt': string too long.", param="prompt", code="string_above_max_length")
    return model


def _picture(width: int, height: int, shade: int) -> str:
    """A flat PNG of the size OpenAI would send, as base64."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 90, 160)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def _answer(request: web.Request, model: str, body: dict[str, Any], kind: str) -> web.Response:
    size = str(body.get("size", "1024x1024"))
    width, height = (1024, 1024) if size == "auto" else (int(side) for side in size.split("x"))
    stream = str(body.get("stream", "false")).lower() == "true"
    partials = int(body.get("partial_images", 0))
    if not 0 <= partials <= 3:
        raise Refused(400, "Invalid 'partial_images': expected a value between 0 and 3.", param="partial_images")
    if stream:
        if model.startswith("dall-e"):
            raise Refused(400, "Streaming is not supported for this model.", param="stream", code="unsupported_value")
        return await _stream(request, kind, width, height, partials)  # type: ignore[return-value]
    data = []
    for index in range(int(body.get("n", 1))):
        item: dict[str, Any] = {}
        if model.startswith("dall-e") and body.get("response_format", "url") == "url":
            item["url"] = f"https://oaidalleapiprodscus.blob.core.windows.net/private/img-{index}.png"
        else:
            item["b64_json"] = _picture(width, height, 40 * index)
        if model == "dall-e-3":
            item["revised_prompt"] = f"Revised: {body['prompt']}"
        data.append(item)
    answer: dict[str, Any] = {"created": int(time.time()), "data": data}
    if not model.startswith("dall-e"):
        answer["usage"] = {
            "input_tokens": 50, "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
            "output_tokens": 4160, "total_tokens": 4210,
        }  # fmt: skip
    return web.Response(text=json.dumps(answer), content_type="application/json")


async def _stream(request: web.Request, kind: str, width: int, height: int, partials: int) -> web.StreamResponse:
    """OpenAI's image stream: `partials` partial images, then the completed image."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    common = {"background": "opaque", "created_at": int(time.time()), "output_format": "png", "quality": "medium",
              "size": f"{width}x{height}"}  # fmt: skip
    events = [
        {"type": f"{kind}.partial_image", "b64_json": _picture(width, height, 60 * i), "partial_image_index": i,
         **common}
        for i in range(partials)
    ]  # fmt: skip
    usage = {"input_tokens": 50, "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
             "output_tokens": 4160, "total_tokens": 4210}  # fmt: skip
    events.append({"type": f"{kind}.completed", "b64_json": _picture(width, height, 200), "usage": usage, **common})
    for event in events:
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
    await response.write_eof()
    return response
