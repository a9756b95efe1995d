"""HTTP answers: every error as one OpenAI-shaped JSON body, and the requests' bodies read and checked.

One mapper (`error_answer`) turns any worker error into its status and body; `as_worker_error`
makes anything else a safe `internal error (id …)` whose details stay in the log.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from worker.errors import BadRequest, NotFound, QueueBusy, WorkerError
from worker.protocol import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)


def json_answer(model: BaseModel, status: int = 200) -> web.Response:
    """A JSON response with exactly `application/json` as its content type."""
    return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")


def json_object(body: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON response for a plain object (OpenAI's list and model shapes)."""
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


def error_body(exc: WorkerError) -> ErrorResponse:
    """The OpenAI-shaped error body for a WorkerError."""
    return ErrorResponse(error=ErrorDetail(message=exc.message, type=exc.type, code=exc.code, param=exc.param))


def error_answer(exc: WorkerError) -> web.Response:
    """The HTTP answer for a WorkerError (with Retry-After when busy)."""
    response = json_answer(error_body(exc), status=exc.status)
    if isinstance(exc, QueueBusy):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return response


def as_worker_error(exc: BaseException) -> WorkerError:
    """Any job failure as a WorkerError that is safe to show."""
    if isinstance(exc, WorkerError):
        return exc
    error_id = secrets.token_hex(4)
    log.error("internal error %s", error_id, exc_info=exc)
    return WorkerError(f"internal error (id {error_id})")


def http_error_answer(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no route, wrong method, too large) in OpenAI's JSON error shape."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message, code = f"{request.method} is not allowed on {request.path}; use {allowed}", "method_not_allowed"
    elif isinstance(exc, web.HTTPNotFound):
        message, code = f"no route {request.method} {request.path}", "not_found"
    else:
        message, code = exc.reason, exc.reason.lower().replace(" ", "_")
    body = ErrorResponse(error=ErrorDetail(message=message, type="invalid_request_error", code=code))
    response = json_answer(body, status=exc.status)
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def validation_message(exc: ValidationError) -> BadRequest:
    """Turn pydantic's report into one short, clear BadRequest."""
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    message = str(first.get("msg", "invalid request"))
    return BadRequest(f"{param}: {message}" if param else message, param=param)


def validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """`body` as `model`, or a BadRequest naming the first broken field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_message(exc) from exc


def job_not_found(job_id: str) -> WorkerError:
    """No job by that id here."""
    return NotFound(f"no queued or running job {job_id!r}", param="job_id")


async def json_body(request: web.Request) -> dict[str, Any]:
    """A request's JSON object body, or a BadRequest."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def image_form(request: web.Request) -> tuple[dict[str, list[web.FileField]], dict[str, str]]:
    """A multipart form's files (by name; `image[]` counts as `image`) and fields; it must hold an image."""
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("send multipart/form-data with an `image` file")
    form = await request.post()
    files: dict[str, list[web.FileField]] = {}
    fields: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files.setdefault(key.removesuffix("[]"), []).append(value)
        elif isinstance(value, str):
            fields[key] = value
    if "image" not in files:
        raise BadRequest("an `image` file is required (or several as `image[]`)", param="image")
    return files, fields
