"""An image service's error answers, as egaku's errors."""

from __future__ import annotations

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
