"""The worker's HTTP API (aiohttp): OpenAI Images shape, bound to loopback by default."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from worker.errors import BadRequest, RenderTimeout, Unauthorized, WorkerError
from worker.protocol import (
    ErrorDetail,
    ErrorResponse,
    GenerationRequest,
    GenerationResponse,
    HealthResponse,
)
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

LOADER: web.AppKey[asyncio.Task[None]] = web.AppKey("loader", asyncio.Task)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Renderer(Protocol):
    """What the server needs from an engine."""

    @property
    def model_names(self) -> list[str]: ...

    def load(self, name: str | None = None) -> None: ...

    def resolve(self, request: GenerationRequest) -> object: ...

    def render(self, request: GenerationRequest) -> GenerationResponse: ...


def json_answer(model: BaseModel, status: int = 200) -> web.Response:
    """A JSON response with exactly `application/json` as its content type."""
    return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")


def error_answer(exc: WorkerError) -> web.Response:
    """The OpenAI-shaped error body for a WorkerError."""
    detail = ErrorDetail(message=exc.message, type=exc.type, code=exc.code, param=exc.param)
    return json_answer(ErrorResponse(error=detail), status=exc.status)


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


class WorkerServer:
    """Routes and state of one worker process."""

    def __init__(self, engine: Renderer, settings: WorkerSettings, token: str | None) -> None:
        self._engine = engine
        self._settings = settings
        self._token = token
        # One thread: jobs reach the GPU one at a time, and never block the loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._ready = asyncio.Event()

    def app(self) -> web.Application:
        """Build the aiohttp application."""
        app = web.Application(middlewares=[self._errors, self._auth], client_max_size=1 << 20)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/images/generations", self.generations)
        app.on_startup.append(self._start_loading)
        app.on_cleanup.append(self._stop)
        return app

    async def _start_loading(self, _app: web.Application) -> None:
        async def load() -> None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.load)
            self._ready.set()

        _app[LOADER] = asyncio.create_task(load())

    async def _stop(self, _app: web.Application) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except WorkerError as exc:
            return error_answer(exc)
        except web.HTTPException:
            raise
        except Exception:
            # The traceback stays in the worker's log; the client gets an id to quote.
            error_id = secrets.token_hex(4)
            log.exception("internal error %s on %s", error_id, request.path)
            return error_answer(WorkerError(f"internal error (id {error_id})"))

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token and request.path != "/healthz":
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                raise Unauthorized("missing or wrong bearer token")
        return await handler(request)

    async def healthz(self, _request: web.Request) -> web.Response:
        """GET /healthz: ok once the default model is loaded."""
        status: Literal["ok", "loading"] = "ok" if self._ready.is_set() else "loading"
        return json_answer(HealthResponse(status=status, models=self._engine.model_names))

    async def models(self, _request: web.Request) -> web.Response:
        """GET /v1/models in OpenAI's list shape."""
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "egaku"} for n in self._engine.model_names]
        return web.Response(text=json.dumps({"object": "list", "data": data}), content_type="application/json")

    async def generations(self, request: web.Request) -> web.Response:
        """POST /v1/images/generations."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest("the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        try:
            job = GenerationRequest.model_validate(body)
        except ValidationError as exc:
            raise validation_message(exc) from exc
        self._engine.resolve(job)  # bounds checked before the job waits for the GPU
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._engine.render, job)
        try:
            result = await asyncio.wait_for(future, timeout=self._settings.request_timeout_s)
        except TimeoutError as exc:
            raise RenderTimeout(f"the job ran past {self._settings.request_timeout_s:.0f}s") from exc
        return json_answer(result)


def check_exposure(settings: WorkerSettings, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if not is_loopback(settings.host) and not token:
        raise SystemExit(
            f"refusing to bind the worker to {settings.host} without a token: "
            "set [worker] token_env and that environment variable"
        )
