"""An image service's error answers, and exceptions as a log line may carry them (never their headers)."""

from __future__ import annotations

import aiohttp
from pydantic import ValidationError

from egaku.errors import from_answer
from worker.protocol import ErrorResponse


def error_for(status: int, raw: bytes) -> Exception:
    """The error for a non-200 answer in OpenAI's error shape (the worker's and OpenAI's own)."""
    try:
        detail = ErrorResponse.model_validate_json(raw).error
    except ValidationError:
        return from_answer(status, None)  # not an error body (a proxy's HTML page...): never shown or passed on
    return from_answer(status, detail.message, param=detail.param)


def safe(exc: BaseException) -> str:
    """An exception as a log line can carry it: its class and a message that holds no request headers.

    aiohttp's errors can repr the request they belong to (its headers: the bearer token), so
    only the class, and the OS error's own text where there is one, are ever logged.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{type(exc).__name__}: {exc.status} {exc.message}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{type(exc).__name__}: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
