"""The worker's HTTP API (aiohttp): OpenAI Images shape, bound to loopback by default.

POST   /v1/images/generations   JSON; "stream": true answers Server-Sent Events; `references`: pictures to draw from
POST   /v1/images/edits         multipart: image (or several image[], the edited one first), optional mask, prompt...
POST   /v1/images/variations    multipart: image, strength...
POST   /v1/images/descriptions  multipart: image; answers an English prompt for it (/describe)
POST   /v1/images/upscales      multipart: image, scale (2 or 4); the upscaler network enlarges it, faithfully
GET    /v1/images/jobs/{id}     queue position and ETA
DELETE /v1/images/jobs/{id}     cancel (queued: at once; running: at the next step)
GET    /v1/images/files/{name}  an image behind a signed, expiring link (response_format="url"; no token)
POST   /v1/concepts/train       multipart: image[] (3-10), token, init_word...; teaches a word (below rendering)
DELETE /v1/concepts/jobs/{id}   cancel a training job (DELETE /v1/images/jobs/{id} finds it too)
GET    /v1/models, /v1/models/{id}, /healthz, /metrics

Every answer that is not an image or a stream is JSON, unknown routes and methods included
(`worker.http.answers`); who may call is `worker.http.access`; the SSE shapes are `worker.http.events`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import secrets
from typing import Any, Literal

from aiohttp import web

from worker.errors import BadRequest, JobCancelled, ModelNotFound, NotFound, RenderTimeout, WorkerError
from worker.files import CONTENT_TYPES, ImageStore
from worker.http.access import Handler, bearer_guard, browser_guard, is_own_host
from worker.http.answers import (
    as_worker_error,
    error_answer,
    http_error_answer,
    image_form,
    job_not_found,
    json_answer,
    json_body,
    json_object,
    validated,
)
from worker.http.cancels import EarlyCancels
from worker.http.events import EgakuEvents, OpenAIEvents, StreamShape, stream_job
from worker.http.metrics import prometheus_text
from worker.jobs import JobQueue, Jobs, LocalJobs, RenderEngine
from worker.protocol import (
    EditRequest,
    GenerationRequest,
    GenerationResponse,
    HealthResponse,
    TeachRequest,
    TeachResponse,
    UpscaleRequest,
    VariationRequest,
)
from worker.scheduler import Job, Progress
from worker.settings import WorkerSettings
from worker.upscale.plan import plan_upscale, upscaler_name

log = logging.getLogger(__name__)


class WorkerServer:
    """Routes and state of one worker process."""

    def __init__(
        self, engine: RenderEngine, settings: WorkerSettings, token: str | None, jobs: Jobs | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._token = token
        # Where jobs run: this process by default, or Ray Serve replicas (worker.ray_serve).
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
        app = web.Application(
            middlewares=[self._errors, browser_guard(self._settings, self._token), bearer_guard(self._token)],
            client_max_size=25 * 1024 * 1024,
        )
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model}", self.model)
        app.router.add_get("/v1/images/files/{name}", self.image_file)
        app.router.add_post("/v1/images/generations", self.generations)
        app.router.add_post("/v1/images/edits", self.edits)
        app.router.add_post("/v1/images/variations", self.variations)
        app.router.add_post("/v1/images/descriptions", self.descriptions)
        app.router.add_post("/v1/images/upscales", self.upscales)
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

    # -- routes --------------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        """GET /healthz: ok once the default model is loaded."""
        status: Literal["ok", "loading"] = "ok" if self._ready.is_set() else "loading"
        health = HealthResponse(
            status=status,
            models=self._engine.model_names,
            loaded=self._jobs.loaded(),
            upscaler=upscaler_name(self._settings),
        )
        return json_answer(health)

    async def models(self, _request: web.Request) -> web.Response:
        """GET /v1/models in OpenAI's list shape: the presets, their aliases and OpenAI's model names."""
        data = [model_object(name) for name in self._settings.served_names]
        return json_object({"object": "list", "data": data})

    async def model(self, request: web.Request) -> web.Response:
        """GET /v1/models/{id}: one served model name."""
        name = request.match_info["model"]
        if self._settings.resolve(name) is None:
            raise ModelNotFound(f"the model {name!r} does not exist here", param="model")
        return json_object(model_object(name))

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
        job_request = validated(GenerationRequest, await json_body(request))
        job_id = job_request.job_id or secrets.token_hex(8)
        # Bounds checked before the job waits; reference pictures are decoded off the loop.
        if job_request.references:
            plan = await asyncio.to_thread(self._engine.plan, job_request, job_id)
        else:
            plan = self._engine.plan(job_request, job_id)
        return await self._run(request, job_request, job_id, plan, "image_generation")

    async def edits(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/edits (multipart)."""
        return await self._edit(request, variation=False)

    async def variations(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/variations (multipart)."""
        return await self._edit(request, variation=True)

    async def descriptions(self, request: web.Request) -> web.Response:
        """POST /v1/images/descriptions (multipart `image`): an English prompt for the picture."""
        files, _fields = await image_form(request)
        image = files["image"][0].file.read()
        return json_answer(await self._jobs.describe(image))

    async def upscales(self, request: web.Request) -> web.Response:
        """POST /v1/images/upscales (multipart `image`, `scale`): the picture enlarged 2x or 4x by the upscaler."""
        files, fields = await image_form(request)
        upscale_request: UpscaleRequest = validated(UpscaleRequest, dict(fields))
        job_id = upscale_request.job_id or secrets.token_hex(8)
        image = files["image"][0].file.read()
        # Decoded and checked against the cap before it waits for the render thread; off the loop.
        plan = await asyncio.to_thread(plan_upscale, self._settings, upscale_request, image, job_id)
        return json_answer(await self._jobs.upscale(plan))

    async def teach(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/concepts/train (multipart `image[]`): learn a word from 3-10 pictures, below rendering."""
        lane = self._jobs.lessons()
        if lane is None:
            raise BadRequest("this worker cannot train: /teach needs a single-box worker (egaku worker)")
        files, fields = await image_form(request)
        lesson_request: TeachRequest = validated(TeachRequest, dict(fields))
        job_id = lesson_request.job_id or secrets.token_hex(8)
        images = [part.file.read() for part in files["image"]]
        # Counted and decoded (format, size, bombs) before anything queues; off the loop.
        plan = await asyncio.to_thread(self._engine.plan_teach, lesson_request, images, job_id)
        events: asyncio.Queue[Progress] | None = asyncio.Queue() if lesson_request.stream else None
        lesson: Job[TeachResponse] = Job(
            id=job_id, user=lesson_request.user or request.remote or "", plan=plan, key=None, events=events
        )
        self._refuse_if_cancelled(job_id)
        lesson = lane.submit(lesson)
        if events is not None and lesson.events is events:
            return await stream_job(request, lesson, EgakuEvents(self.scheduler), self._settled(lesson), lane.cancel)
        return json_answer(await self._settled(lesson))

    def _refuse_if_cancelled(self, job_id: str) -> None:
        """A job whose cancel overtook it (see EarlyCancels) ends as cancelled before it queues."""
        if self._early_cancels.claim(job_id):
            raise JobCancelled()

    async def _settled(self, job: Job[Any]) -> Any:
        """A training job's outcome: it is bounded by its own step and time limits, not request_timeout_s."""
        assert job.future is not None
        return await asyncio.shield(job.future)

    async def _edit(self, request: web.Request, *, variation: bool) -> web.StreamResponse:
        files, fields = await image_form(request)
        outpaint = next((name for name in ("zoom", "pan") if name in fields), None)
        if variation and outpaint is not None:
            raise BadRequest("zoom and pan are edits: use /v1/images/edits", param=outpaint)
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
        if "references" in fields or "references" in files:
            raise BadRequest("an edit's references are further image[] files, after the one edited", param="references")
        job_request = validated(VariationRequest if variation else EditRequest, parsed)
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
        job = self.scheduler.submit(job)
        if events is not None and job.events is events:
            shape: StreamShape = (
                EgakuEvents(self.scheduler)
                if job_request.stream_format == "egaku"
                else OpenAIEvents(stream_kind, job_request.requester)
            )
            # A job the client named can be asked for again under that id (a restarted bot re-attaches),
            # so it runs on when the client goes away; an anonymous one has nobody left to see it.
            keep = job_request.job_id is not None
            return await stream_job(request, job, shape, self._outcome(job), self.scheduler.cancel, keep=keep)
        outcome = (await self._outcome(job)).model_copy(update={"safety_identifier": job_request.requester})
        if job_request.wants_url:
            outcome = await self._as_links(request, outcome)
        return json_answer(outcome)

    async def _as_links(self, request: web.Request, outcome: GenerationResponse) -> GenerationResponse:
        """The response with each image moved behind a signed link instead of inline base64."""
        # The request's own Host only when it is one of the worker's names: links never point elsewhere.
        own = is_own_host(request, self._settings)
        base = self._settings.public_url or (
            f"{request.scheme}://{request.host}" if own else f"http://{self._settings.host}:{self._settings.port}"
        )
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

    async def job_status(self, request: web.Request) -> web.Response:
        """GET /v1/images/jobs/{id}: position (0 = running) and ETA."""
        job = self.scheduler.find(request.match_info["job_id"])
        if job is None:
            raise job_not_found(request.match_info["job_id"])
        position = self.scheduler.position(job)
        return json_object({"id": job.id, "position": position, "eta_s": round(self.scheduler.eta_s(position), 3)})

    async def cancel(self, request: web.Request) -> web.Response:
        """DELETE /v1/images/jobs/{id} (a render or a training job) and /v1/concepts/jobs/{id}."""
        job_id = request.match_info["job_id"]
        lane = self._jobs.lessons()
        if not self.scheduler.cancel(job_id) and not (lane is not None and lane.cancel(job_id)):
            # Unknown now, but it may be on its way: the job that arrives under this id is refused.
            self._early_cancels.remember(job_id)
            raise job_not_found(job_id)
        return json_object({"id": job_id, "cancelled": True})

    async def metrics(self, _request: web.Request) -> web.Response:
        """GET /metrics in Prometheus' text format."""
        text = prometheus_text(self._scheduler, self._ready.is_set(), self._engine.memory())
        return web.Response(text=text, content_type="text/plain")


def model_object(name: str) -> dict[str, Any]:
    """One served model name in OpenAI's model shape."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "egaku"}
