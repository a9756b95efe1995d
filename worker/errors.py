"""The worker's errors, each mapped to one HTTP status and OpenAI error type.

WorkerError
├── BadRequest      400 invalid_request_error  (bounds, unknown model)
├── Unauthorized    401 authentication_error   (missing or wrong bearer token)
├── OutOfMemory     503 server_error           (this job only; the next one runs)
├── RenderTimeout   504 server_error           (the per-job time limit passed)
└── ModelUnavailable 503 server_error          (a preset cannot load: missing class or package, wrong family)
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base class; `status` and `type` become the HTTP answer."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class BadRequest(WorkerError):
    """The request breaks a bound or names something that does not exist."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_value"


class Unauthorized(WorkerError):
    """The bearer token is missing or wrong."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ContentBlocked(BadRequest):
    """The safety checker flagged the picture."""

    code = "content_policy_violation"


class NotFound(BadRequest):
    """No such job."""

    status = 404
    code = "not_found"


class JobCancelled(BadRequest):
    """The job was cancelled before it finished."""

    status = 409
    code = "cancelled"


class QueueBusy(WorkerError):
    """The queue is full."""

    status = 503
    code = "queue_full"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OutOfMemory(WorkerError):
    """The GPU ran out of memory on this job."""

    status = 503
    code = "out_of_memory"


class RenderTimeout(WorkerError):
    """The job ran past its time limit."""

    status = 504
    code = "timeout"


class ModelUnavailable(WorkerError):
    """A preset cannot be loaded: its class or an optional package is missing, or its family is wrong.

    Raised at start-up; the message names the preset and what to change.
    """

    status = 503
    code = "model_unavailable"
