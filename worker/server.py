"""The worker's HTTP API (aiohttp): OpenAI Images shape, bound to loopback by default.

POST   /v1/images/generations   JSON; "stream": true answers Server-Sent Events
POST   /v1/images/edits         multipart: image, optional mask, prompt, strength, mask_prompt...
POST   /v1/images/variations    multipart: image, strength...
POST   /v1/images/descriptions  multipart: image; answers an English prompt for it (/describe)
GET    /v1/images/jobs/{id}     queue position and ETA
DELETE /v1/images/jobs/{id}     cancel (queued: at once; running: at the next step)
GET    /v1/images/files/{name}  an image behind a signed, expiring link (response_format="url"; no token)
POST   /v1/concepts/train       multipart: image[] (3-10), token, init_word...; teaches a word (below rendering)
DELETE /v1/concepts/jobs/{id}   cancel a training job (DELETE /v1/images/jobs/{id} finds it too)
GET    /v1/models, /v1/models/{id}, /healthz, /metrics

Every answer that is not an image or a stream is JSON, unknown routes and methods included.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from worker.errors import BadRequest, JobCancelled, NotFound, QueueBusy, RenderTimeout, Unauthorized, WorkerError
from worker.files import CONTENT_TYPES, ImageStore
from worker.jobs import JobQueue, Jobs, LocalJobs
from worker.protocol import (
    EditRequest,
    ErrorDetail,
    ErrorResponse,
    GenerationRequest,
    GenerationResponse,
    HealthResponse,
    OpenAIStreamEvent,
    TeachRequest,
    TeachResponse,
    Usage,
    VariationRequest,
    image_tokens,
)
from worker.scheduler import Cancelled, Job, Progress, QueueFull
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Renderer(Protocol):
    """What the server needs from an engine (the real one needs torch; tests may fake it)."""

    @property
    def model_names(self) -> list[str]: ...

    def load(self, name: str | None = None) -> None: ...

    def plan(self, request: GenerationRequest, job_id: str = "") -> Any: ...

    def plan_edit(
        self,
        request: EditRequest,
        image: bytes,
        mask: bytes | None,
        job_id: str = "",
        *,
        extra_images: Sequence[bytes] = (),
    ) -> Any: ...

    def run_batch(self, jobs: Any, report: Any) -> list[Any]: ...

    def describe(self, image: bytes) -> Any: ...

    def plan_teach(self, request: TeachRequest, images: Sequence[bytes], job_id: str = "") -> Any: ...

    def trainer(self, plan: Any) -> Any: ...


def json_answer(model: BaseModel, status: int = 200) -> web.Response:
    """A JSON response with exactly `application/json` as its content type."""
    return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")


def error_body(exc: WorkerError) -> ErrorResponse:
    """The OpenAI-shaped error body for a WorkerError."""
    return ErrorResponse(error=ErrorDetail(message=exc.message, type=exc.type, code=exc.code, param=exc.param))


def error_answer(exc: WorkerError) -> web.Response:
    """The HTTP answer for a WorkerError (with Retry-After when busy)."""
    response = json_answer(error_body(exc), status=exc.status)
    if isinstance(exc, QueueBusy):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return response


def validation_message(exc: ValidationError) -> BadRequest:
    """Turn pydantic's report into one short, clear BadRequest."""
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    message = str(first.get("msg", "invalid request"))
    return BadRequest(f"{param}: {message}" if param else message, param=param)


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def as_worker_error(exc: BaseException) -> WorkerError:
    """Any job failure as a WorkerError that is safe to show."""
    if isinstance(exc, WorkerError):
        return exc
    if isinstance(exc, Cancelled):
        return JobCancelled("the job was cancelled", param="job_id")
    error_id = secrets.token_hex(4)
    log.error("internal error %s", error_id, exc_info=exc)
    return WorkerError(f"internal error (id {error_id})")


class EarlyCancels:
    """Cancels of job ids this worker does not have (yet).

    A client names its job's id before the job arrives (the bot shows its Cancel button, and
    `/teach` its status message, at once), so a DELETE can overtake the very request it cancels
    while that request is still uploading or being checked. The id is kept for a while, bounded,
    and the job that later arrives under it is refused as cancelled instead of running unseen.
    """

    def __init__(self, keep_s: float = 300.0, limit: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep_s = keep_s
        self._limit = limit
        self._clock = clock
        self._ids: dict[str, float] = {}  # job id -> when its cancel came, oldest first

    def remember(self, job_id: str) -> None:
        """Note a cancel for an id not (yet) known; the oldest notes go past the limit."""
        self._ids.pop(job_id, None)
        self._ids[job_id] = self._clock()
        while len(self._ids) > self._limit:
            del self._ids[next(iter(self._ids))]

    def claim(self, job_id: str) -> bool:
        """Whether a job arriving under this id was cancelled in the last keep_s (the note is used up)."""
        when = self._ids.pop(job_id, None)
        return when is not None and self._clock() - when <= self._keep_s


class WorkerServer:
    """Routes and state of one worker process."""

    def __init__(self, engine: Renderer, settings: WorkerSettings, token: str | None, jobs: Jobs | None = None) -> None:
        self._engine = engine
        self._settings = settings
        self._token = token
        # Where jobs run: this process by default, or Ray Serve replicas (worker.serve).
        self._jobs: Jobs = jobs if jobs is not None else LocalJobs(engine, settings)
        self._ready = asyncio.Event()
        self._scheduler: JobQueue | None = None
        self._files: ImageStore | None = None
        self._early_cancels = EarlyCancels()

    @property
    def scheduler(self) -> JobQueue:
        """The queue (exists once the app has started)."""
        assert self._scheduler is not None
        return self._scheduler

    @property
    def jobs(self) -> Jobs:
        """Where this server's jobs run."""
        return self._jobs

    def app(self) -> web.Application:
        """Build the aiohttp application."""
        app = web.Application(middlewares=[self._errors, self._auth], client_max_size=25 * 1024 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model}", self.model)
        app.router.add_get("/v1/images/files/{name}", self.image_file)
        app.router.add_post("/v1/images/generations", self.generations)
        app.router.add_post("/v1/images/edits", self.edits)
        app.router.add_post("/v1/images/variations", self.variations)
        app.router.add_post("/v1/images/descriptions", self.descriptions)
        app.router.add_get("/v1/images/jobs/{job_id}", self.job_status)
        app.router.add_delete("/v1/images/jobs/{job_id}", self.cancel)
        app.router.add_post("/v1/concepts/train", self.teach)
        app.router.add_delete("/v1/concepts/jobs/{job_id}", self.cancel)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._drain)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        self._scheduler = self._jobs.open()
        self._files = ImageStore(self._settings.url_ttl_s)
        self._sweeper = asyncio.create_task(self._sweep())

        async def load() -> None:
            try:
                await self._jobs.load()
            except Exception:
                # Nobody awaits this task: say why the worker never becomes ready.
                log.exception("the default model could not be loaded; the worker stays unready")
                raise
            self._ready.set()

        self._loader = asyncio.create_task(load())

    async def _drain(self, _app: web.Application) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scheduler.drain(), self._settings.drain_timeout_s)

    async def _stop(self, _app: web.Application) -> None:
        self._jobs.close()
        if self._files is not None:
            self._sweeper.cancel()
            self._files.close()

    async def _sweep(self) -> None:
        """Delete expired link files now and then, off the loop."""
        assert self._files is not None
        while True:
            await asyncio.sleep(min(60.0, self._settings.url_ttl_s))
            await asyncio.to_thread(self._files.sweep)

    @property
    def files(self) -> ImageStore:
        """The images kept behind links (exists once the app has started)."""
        assert self._files is not None
        return self._files

    # -- middleware ----------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except WorkerError as exc:
            return error_answer(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return http_error_answer(request, exc)
        except Exception as exc:
            # The traceback stays in the worker's log; the client gets an id to quote.
            return error_answer(as_worker_error(exc))

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Image links carry their own signature: a browser or a chat client fetches them without the token.
        public = request.path in ("/healthz", "/metrics") or request.path.startswith("/v1/images/files/")
        if self._token and not public:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                raise Unauthorized("missing or wrong bearer token")
        return await handler(request)

    # -- routes --------------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        """GET /healthz: ok once the default model is loaded."""
        status: Literal["ok", "loading"] = "ok" if self._ready.is_set() else "loading"
        return json_answer(HealthResponse(status=status, models=self._engine.model_names))

    async def models(self, _request: web.Request) -> web.Response:
        """GET /v1/models in OpenAI's list shape: the presets, their aliases and OpenAI's model names."""
        data = [_model_object(name) for name in self._settings.served_names]
        return web.Response(text=json.dumps({"object": "list", "data": data}), content_type="application/json")

    async def model(self, request: web.Request) -> web.Response:
        """GET /v1/models/{id}: one served model name."""
        name = request.match_info["model"]
        if self._settings.resolve(name) is None:
            raise ModelNotFound(f"the model {name!r} does not exist here", param="model")
        return web.Response(text=json.dumps(_model_object(name)), content_type="application/json")

    async def image_file(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/images/files/{name}?expires=..&sig=..: an image behind a signed, expiring link."""
        name = request.match_info["name"]
        path = self.files.open(name, request.query.get("expires", ""), request.query.get("sig", ""))
        if path is None:
            raise NotFound("no such image, or its link has expired", param="url")
        fmt = name.rsplit(".", 1)[1]
        return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[fmt], "Cache-Control": "private"})

    async def generations(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/generations."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest("the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        job_request = _validate(GenerationRequest, body)
        job_id = job_request.job_id or secrets.token_hex(8)
        plan = self._engine.plan(job_request, job_id)  # bounds checked before the job waits
        return await self._run(request, job_request, job_id, plan, "image_generation")

    async def edits(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/edits (multipart)."""
        return await self._edit(request, variation=False)

    async def variations(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/variations (multipart)."""
        return await self._edit(request, variation=True)

    async def descriptions(self, request: web.Request) -> web.Response:
        """POST /v1/images/descriptions (multipart `image`): an English prompt for the picture."""
        files, _fields = await _image_form(request)
        image = files["image"][0].file.read()
        return json_answer(await self._jobs.describe(image))

    async def teach(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/concepts/train (multipart `image[]`): learn a word from 3-10 pictures, below rendering."""
        lane = self._jobs.training()
        if lane is None:
            raise BadRequest("this worker cannot train: /teach needs a single-box worker (egaku worker)")
        files, fields = await _image_form(request)
        lesson_request: TeachRequest = _validate(TeachRequest, dict(fields))
        job_id = lesson_request.job_id or secrets.token_hex(8)
        images = [part.file.read() for part in files["image"]]
        # Counted and decoded (format, size, bombs) before anything queues; off the loop.
        plan = await asyncio.to_thread(self._engine.plan_teach, lesson_request, images, job_id)
        events: asyncio.Queue[Progress] | None = asyncio.Queue() if lesson_request.stream else None
        lesson: Job[TeachResponse] = Job(
            id=job_id, user=lesson_request.user or request.remote or "", plan=plan, key=None, events=events
        )
        self._refuse_if_cancelled(job_id)
        try:
            lesson = lane.submit(lesson)
        except QueueFull as exc:
            raise QueueBusy(str(exc), exc.retry_after_s) from exc
        if events is not None and lesson.events is events:
            return await self._stream(request, lesson, EgakuEvents(self.scheduler), self._settled(lesson), lane.cancel)
        return json_answer(await self._settled(lesson))

    def _refuse_if_cancelled(self, job_id: str) -> None:
        """A job whose cancel overtook it (see EarlyCancels) ends as cancelled before it queues."""
        if self._early_cancels.claim(job_id):
            raise as_worker_error(Cancelled(f"job {job_id} was cancelled before it arrived"))

    async def _settled(self, job: Job[Any]) -> Any:
        """A training job's outcome: it is bounded by its own step and time limits, not request_timeout_s."""
        assert job.future is not None
        try:
            return await asyncio.shield(job.future)
        except Cancelled as exc:
            raise as_worker_error(exc) from exc

    async def _edit(self, request: web.Request, *, variation: bool) -> web.StreamResponse:
        files, fields = await _image_form(request)
        if variation:
            fields.pop("mask_prompt", None)
        parsed: dict[str, Any] = dict(fields)
        for listed in ("adapters", "concepts"):
            if listed in parsed:
                try:
                    parsed[listed] = json.loads(parsed[listed])
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"{listed} must be a JSON list", param=listed) from exc
        if any(key.startswith("svg[") for key in fields):
            raise BadRequest("svg: SVG output is not supported here", param="svg")
        if "markup" in files:
            raise BadRequest("markup overlays are not supported here: send a mask", param="markup")
        job_request = _validate(VariationRequest if variation else EditRequest, parsed)
        job_id = job_request.job_id or secrets.token_hex(8)
        image, *others = [part.file.read() for part in files["image"]]
        masks = files.get("mask", [])
        mask = masks[0].file.read() if masks and not variation else None
        # Decoding an upload is CPU work: keep it off the loop (and off the render thread).
        plan = await asyncio.to_thread(
            functools.partial(self._engine.plan_edit, job_request, image, mask, job_id, extra_images=others)
        )
        return await self._run(request, job_request, job_id, plan, "image_edit")

    async def _run(
        self, request: web.Request, job_request: GenerationRequest, job_id: str, plan: Any, stream_kind: str
    ) -> web.StreamResponse:
        events: asyncio.Queue[Progress] | None = asyncio.Queue() if job_request.stream else None
        job: Job[GenerationResponse] = Job(
            id=job_id, user=job_request.requester or request.remote or "", plan=plan, key=plan.key,
            priority=job_request.priority, events=events,
        )  # fmt: skip
        self._refuse_if_cancelled(job_id)
        try:
            job = self.scheduler.submit(job)
        except QueueFull as exc:
            raise QueueBusy(str(exc), exc.retry_after_s) from exc
        if events is not None and job.events is events:
            shape: StreamShape = (
                EgakuEvents(self.scheduler)
                if job_request.stream_format == "egaku"
                else OpenAIEvents(stream_kind, job_request.requester)
            )
            return await self._stream(request, job, shape, self._outcome(job), self.scheduler.cancel)
        outcome = (await self._outcome(job)).model_copy(update={"safety_identifier": job_request.requester})
        if job_request.wants_url:
            outcome = await self._as_links(request, outcome)
        return json_answer(outcome)

    async def _as_links(self, request: web.Request, outcome: GenerationResponse) -> GenerationResponse:
        """The response with each image moved behind a signed link instead of inline base64."""
        base = self._settings.public_url or f"{request.scheme}://{request.host}"
        data = []
        for item in outcome.data:
            assert item.b64_json is not None
            stored = await asyncio.to_thread(self.files.put, base64.b64decode(item.b64_json), outcome.output_format)
            data.append(item.model_copy(update={"b64_json": None, "url": self.files.link(base, stored)}))
        return outcome.model_copy(update={"data": data})

    async def _outcome(self, job: Job[GenerationResponse]) -> GenerationResponse:
        assert job.future is not None
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout=self._settings.request_timeout_s)
        except TimeoutError as exc:
            self.scheduler.cancel(job.id)  # a running job stops at its next step
            raise RenderTimeout(f"the job ran past {self._settings.request_timeout_s:.0f}s") from exc
        except Cancelled as exc:
            raise as_worker_error(exc) from exc

    async def _stream(
        self,
        request: web.Request,
        job: Job[Any],
        shape: StreamShape,
        settled: Awaitable[Any],
        cancel: Callable[[str], bool],
    ) -> web.StreamResponse:
        """Write a job's progress, then its outcome (`settled`), as events; a client that leaves cancels it."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        outcome = asyncio.ensure_future(settled)
        assert job.events is not None
        try:
            while True:
                getter = asyncio.ensure_future(job.events.get())
                done, _ = await asyncio.wait({getter, outcome}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await _send(response, shape.progress(getter.result()))
                    continue
                getter.cancel()
                while not job.events.empty():
                    await _send(response, shape.progress(job.events.get_nowait()))
                try:
                    await _send(response, shape.completed(outcome.result()))
                except Exception as exc:  # the headers are sent: a failure can only be an event now
                    await _send(response, shape.error(as_worker_error(exc)))
                break
        except ConnectionResetError:
            # The client went away: nobody will see the result, so stop working on it.
            cancel(job.id)
        finally:
            outcome.cancel()
        await response.write_eof()
        return response

    async def job_status(self, request: web.Request) -> web.Response:
        """GET /v1/images/jobs/{id}: position (0 = running) and ETA."""
        job = self.scheduler.find(request.match_info["job_id"])
        if job is None:
            raise _not_found(request.match_info["job_id"])
        position = self.scheduler.position(job)
        body = {"id": job.id, "position": position, "eta_s": round(self.scheduler.eta_s(position), 3)}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def cancel(self, request: web.Request) -> web.Response:
        """DELETE /v1/images/jobs/{id} (a render or a training job) and /v1/concepts/jobs/{id}."""
        job_id = request.match_info["job_id"]
        lane = self._jobs.training()
        if not self.scheduler.cancel(job_id) and not (lane is not None and lane.cancel(job_id)):
            # Unknown now, but it may be on its way: the job that arrives under this id is refused.
            self._early_cancels.remember(job_id)
            raise _not_found(job_id)
        return web.Response(text=json.dumps({"id": job_id, "cancelled": True}), content_type="application/json")

    async def metrics(self, _request: web.Request) -> web.Response:
        """GET /metrics in Prometheus' text format."""
        stats = self.scheduler.stats if self._scheduler else None
        lines = [
            "# HELP egaku_queue_depth Jobs waiting for the GPU.",
            "# TYPE egaku_queue_depth gauge",
            f"egaku_queue_depth {self._scheduler.depth if self._scheduler else 0}",
            "# HELP egaku_ready Whether the default model is loaded.",
            "# TYPE egaku_ready gauge",
            f"egaku_ready {int(self._ready.is_set())}",
        ]
        if stats is not None:
            lines += [
                "# HELP egaku_jobs_total Jobs by outcome.",
                "# TYPE egaku_jobs_total counter",
                *(
                    f'egaku_jobs_total{{outcome="{name}"}} {getattr(stats, name)}'
                    for name in ("submitted", "completed", "failed", "cancelled", "rejected_full")
                ),
                "# HELP egaku_batches_total Batches run, by batch size.",
                "# TYPE egaku_batches_total counter",
                *(f'egaku_batches_total{{size="{size}"}} {count}' for size, count in sorted(stats.batches.items())),
                "# HELP egaku_batch_seconds_total Time spent rendering batches.",
                "# TYPE egaku_batch_seconds_total counter",
                f"egaku_batch_seconds_total {stats.batch_seconds:.6f}",
                "# HELP egaku_step_seconds Denoising step time (sum and count; mean = sum / count).",
                "# TYPE egaku_step_seconds summary",
                f"egaku_step_seconds_sum {stats.step_seconds:.6f}",
                f"egaku_step_seconds_count {stats.steps}",
            ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def _image_form(request: web.Request) -> tuple[dict[str, list[web.FileField]], dict[str, str]]:
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


def _validate(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_message(exc) from exc


def _not_found(job_id: str) -> WorkerError:
    return NotFound(f"no queued or running job {job_id!r}", param="job_id")


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "egaku"}


class ModelNotFound(NotFound):
    """No such model name (OpenAI's code for it)."""

    code = "model_not_found"


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


SSE = tuple[str, dict[str, Any]]


class StreamShape(Protocol):
    """How a job's progress and outcome are written as Server-Sent Events."""

    def progress(self, event: Progress) -> list[SSE]: ...

    def completed(self, outcome: Any) -> list[SSE]: ...

    def error(self, exc: WorkerError) -> list[SSE]: ...


class EgakuEvents:
    """egaku's progress stream: queued, started, step, preview, then completed (the whole body) or error."""

    def __init__(self, scheduler: JobQueue) -> None:
        self._scheduler = scheduler

    def progress(self, event: Progress) -> list[SSE]:
        """Queue position (with an ETA), steps and previews; OpenAI's partial images are not for this stream."""
        if event.kind == "partial":
            return []
        if event.kind == "queued" and "eta_s" not in event.data:  # a training job brings its own
            event.data["eta_s"] = round(self._scheduler.eta_s(event.data["position"]), 3)
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


async def _send(response: web.StreamResponse, events: list[SSE]) -> None:
    for event, data in events:
        await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def check_exposure(settings: WorkerSettings, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if not is_loopback(settings.host) and not token:
        raise SystemExit(
            f"refusing to bind the worker to {settings.host} without a token: "
            "set [worker] token_env and that environment variable"
        )
