"""The worker's errors, each mapped to one HTTP status and OpenAI error type.

The worker is its own deployable, so its wire errors are its own tree; the bot maps each
answer to egaku's tree in one place (`egaku.errors.from_answer`). The scheduler, the teach
lane and the Ray Serve front raise these very classes, so nothing is translated twice.

    WorkerError            500 server_error           (an internal error; the client gets an id to quote)
    ├── BadRequest         400 invalid_request_error  (bounds, unknown model, unreadable upload)
    │   ├── ContentBlocked 400 content_policy_violation (the safety checker flagged the picture)
    │   ├── NotFound       404 not_found              (no such job, route or link)
    │   │   └── ModelNotFound 404 model_not_found
    │   └── JobCancelled   409 cancelled              (cancelled before it finished)
    ├── Unauthorized       401 authentication_error   (missing or wrong bearer token)
    ├── Forbidden          403 permission_error       (a browser's cross-site request, or a foreign Host)
    ├── QueueBusy          503 queue_full             (with Retry-After)
    ├── OutOfMemory        503 out_of_memory          (this job only; the next one runs)
    ├── ModelUnavailable   503 model_unavailable      (a preset cannot load: missing class or package, wrong family)
    └── RenderTimeout      504 timeout                (the per-job time limit passed)
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


class ModelNotFound(NotFound):
    """No such model name (OpenAI's code for it)."""

    code = "model_not_found"


class JobCancelled(BadRequest):
    """The job was cancelled before it finished (queued: at once; running: at its next step)."""

    status = 409
    code = "cancelled"

    def __init__(self, message: str = "the job was cancelled", *, param: str | None = "job_id") -> None:
        super().__init__(message, param=param)


class Forbidden(WorkerError):
    """A request this worker will not serve from where it came (a browser page, a foreign Host)."""

    status = 403
    type = "permission_error"
    code = "forbidden"


class QueueBusy(WorkerError):
    """The queue is full; retry after about `retry_after_s` seconds."""

    status = 503
    code = "queue_full"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @classmethod
    def full(cls, retry_after_s: float) -> QueueBusy:
        """The answer of a full queue."""
        return cls(f"the queue is full; retry in about {retry_after_s:.0f}s", retry_after_s)


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
