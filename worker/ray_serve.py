"""The worker on Ray Serve: renderer replicas (one per GPU) behind the worker's own HTTP front.

Longer than most modules on purpose: it is the only module that imports Ray, so the replica,
the gateway's view of the jobs and the deployment stay together behind that one import.

    client ─HTTP─► Gateway (1 replica: worker/http's aiohttp app, unchanged routes and validation)
                      │ ServeJobs: a job → one streaming handle call, model id = preset (serve.multiplexed)
                      ▼
                   Renderer × N (each: Engine + the same fair, batching Scheduler as a single worker)

Serve is at-most-once: a replica that dies mid-job fails its calls with ActorDiedError and
nothing retries them. The gateway does: the job runs again on another replica under the
same job id, and the client sees one answer (a longer wait, at most). The gateway keeps the
job → call map, so cancel by id works without sticky routing. Ray is imported here only;
the bot and the single-box worker never load this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.exceptions import BackPressureError, ReplicaUnavailableError, RequestCancelledError
from ray.serve.handle import DeploymentHandle

from worker.errors import JobCancelled, QueueBusy, WorkerError
from worker.http import WorkerServer, check_exposure
from worker.http.answers import as_worker_error, error_body
from worker.jobs import LocalJobs
from worker.kept import kept_responses
from worker.protocol import DescriptionResponse, ErrorResponse, GenerationResponse, UpscaleResponse
from worker.scheduler import Job, Progress, SchedulerStats, answered, eta_estimate, follow, settle
from worker.settings import WorkerSettings, read_secret
from worker.upscale.plan import UpscalePlan

log = logging.getLogger(__name__)

APP_NAME = "egaku"

# What a replica's death looks like to a handle caller; only these are retried.
REPLICA_DIED = (ActorDiedError, ActorUnavailableError, ReplicaUnavailableError)


@dataclass(frozen=True)
class JobSpec:
    """A planned job, as the gateway sends it to a replica."""

    job_id: str
    user: str
    priority: int
    plan: Any  # worker.engine.Plan: checked by the gateway against the same presets


@dataclass(frozen=True)
class Failure:
    """A job's error, as a replica sends it back (exceptions do not cross processes intact)."""

    status: int
    error: ErrorResponse
    retry_after_s: float | None = None

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        """The failure for any exception a job ended with."""
        worker_error = as_worker_error(exc)
        retry = worker_error.retry_after_s if isinstance(worker_error, QueueBusy) else None
        return cls(status=worker_error.status, error=error_body(worker_error), retry_after_s=retry)

    def exception(self) -> WorkerError:
        """The same error again, on this side."""
        detail = self.error.error
        if self.retry_after_s is not None:
            return QueueBusy(detail.message, self.retry_after_s)
        rebuilt = WorkerError(detail.message, param=detail.param)
        rebuilt.status, rebuilt.type, rebuilt.code = self.status, detail.type, detail.code
        return rebuilt


class LoadedModel:
    """A preset a replica holds; Serve calls __del__ when it evicts the least recently used one."""

    def __init__(self, name: str, unload: Any, executor: Executor) -> None:
        self.name = name
        self._unload = unload
        self._executor = executor
        self._gone = False

    def __del__(self) -> None:
        if not self._gone:
            self._gone = True
            # On the render thread, between batches: never under a batch that uses it.
            with contextlib.suppress(RuntimeError):  # the executor is already shut down
                self._executor.submit(self._unload, self.name)


class Renderer:
    """One replica: an Engine and the fair scheduler, as in a single-box worker (one GPU each)."""

    async def __init__(  # type: ignore[misc]  # Serve awaits it
        self, settings: WorkerSettings, make_engine: Callable[[WorkerSettings], Any] | None = None
    ) -> None:
        if settings.serve.torch_threads:
            import torch

            torch.set_num_threads(settings.serve.torch_threads)
        if make_engine is None:
            from worker.engine import Engine

            make_engine = Engine
        # The real Engine; the scaling benchmark gives a fixed-cost one (simulated GPU time).
        self._engine = make_engine(settings)
        self._jobs = LocalJobs(self._engine, settings)
        self._queue = self._jobs.open()
        await self._jobs.load()
        context = serve.get_replica_context()
        self._replica = context.replica_id.unique_id if context is not None else "local"
        engine, executor = self._engine, self._jobs.executor

        async def load_model(model_id: str) -> LoadedModel:
            await asyncio.get_running_loop().run_in_executor(executor, engine.load, model_id)
            return LoadedModel(model_id, engine.unload, executor)

        self._model = serve.multiplexed(max_num_models_per_replica=settings.serve.max_models_per_replica)(load_model)
        await self._model(settings.default_model)  # the default counts against the bound too

    async def run(self, spec: JobSpec) -> AsyncIterator[Progress | GenerationResponse | Failure]:
        """Queue a job here; stream its progress, then its response or failure."""
        await self._model(serve.get_multiplexed_model_id() or spec.plan.model)
        events: asyncio.Queue[Progress] = asyncio.Queue()
        job: Job[GenerationResponse] = Job(
            id=spec.job_id, user=spec.user, plan=spec.plan, key=spec.plan.key, priority=spec.priority, events=events
        )
        try:
            job = self._queue.submit(job)
        except QueueBusy as exc:
            yield Failure.of(exc)
            return
        try:
            if job.events is events:
                async for event in follow(job):
                    if event.kind == "queued":
                        event.data["eta_s"] = round(self._queue.eta_s(event.data["position"]), 3)
                    elif event.kind == "started":
                        event.data["replica"] = self._replica  # which replica ran it, for operators
                    yield event
            assert job.future is not None
            try:
                yield await asyncio.shield(job.future)
            except Exception as exc:
                yield Failure.of(exc)
        except asyncio.CancelledError:
            # The caller cancelled (DELETE by id, or its client went away): stop rendering it.
            self._queue.cancel(job.id)
            raise

    async def describe(self, image: bytes) -> DescriptionResponse | Failure:
        """Caption an upload on this replica's render thread."""
        try:
            return await self._jobs.describe(image)
        except Exception as exc:
            return Failure.of(exc)

    async def upscale(self, plan: UpscalePlan) -> UpscaleResponse | Failure:
        """Upscale a picture on this replica's render thread."""
        try:
            return await self._jobs.upscale(plan)
        except Exception as exc:
            return Failure.of(exc)

    async def whoami(self) -> tuple[str, int]:
        """This replica's id and process id (operators and the chaos test use them)."""
        return self._replica, os.getpid()

    async def models(self) -> list[str]:
        """The presets this replica holds now (read on the render thread, after any pending unload)."""
        engine = self._engine
        return await asyncio.get_running_loop().run_in_executor(self._jobs.executor, lambda: engine.loaded)

    def check_health(self) -> None:
        """Serve's health probe: the dispatcher must be alive, or the replica is replaced."""
        task = getattr(self._queue, "_task", None)
        if task is None or task.done():
            raise RuntimeError("the scheduler's dispatcher is not running")

    def __del__(self) -> None:
        self._jobs.close()


class ServeQueue:
    """The gateway's view of the jobs: each one is a streaming call to some replica.

    It answers the routes as the in-process Scheduler does (submit, cancel, find,
    position, ETA, stats). Fairness is kept inside each replica, by its own Scheduler.
    """

    def __init__(self, renderer: DeploymentHandle, settings: WorkerSettings) -> None:
        self._renderer = renderer
        self._settings = settings
        # The fair queues live in the replicas; this bound keeps the total what N workers would hold.
        self._bound = settings.max_queue * settings.serve.replicas
        self._jobs: dict[str, Job[GenerationResponse]] = {}
        self._positions: dict[str, int] = {}
        self._calls: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = SchedulerStats()
        self.retries = 0
        # Finished results by id, as a single worker keeps them: a client that lost its answer asks again.
        # A gateway that restarts forgets them; the job id then reaches a replica, which may still have it.
        self._kept = kept_responses(settings)

    @property
    def depth(self) -> int:
        """Jobs waiting in some replica's queue."""
        return sum(1 for p in self._positions.values() if p > 0)

    def waiting(self) -> dict[int, int]:
        """Jobs waiting in some replica's queue, by priority."""
        counts: dict[int, int] = {}
        for job_id, position in self._positions.items():
            if position > 0 and job_id in self._jobs:
                priority = self._jobs[job_id].priority
                counts[priority] = counts.get(priority, 0) + 1
        return counts

    def submit(self, job: Job[GenerationResponse]) -> Job[GenerationResponse]:
        """Send a job to a replica; or attach to the job in flight with this id; or answer it with its kept result."""
        existing = self._jobs.get(job.id)
        if existing is not None:
            if job.events is not None:
                existing.events = job.events  # the newest listener gets the progress from now on
                position = self._positions.get(job.id, 0)
                running = {"batch_size": 1, "attached": True}
                kind, data = ("started", running) if position == 0 else ("queued", {"position": position})
                job.events.put_nowait(Progress(kind, {"job_id": job.id, **data}))
            return existing
        done = answered(asyncio.get_running_loop(), job, self._kept)
        if done is not None:
            return done
        if self._closing or len(self._jobs) >= self._bound:
            self.stats.rejected_full += 1
            raise QueueBusy.full(self.eta_s(self.depth))
        job.future = asyncio.get_running_loop().create_future()
        self._jobs[job.id] = job
        self._positions[job.id] = len(self._jobs)
        self.stats.submitted += 1
        task = asyncio.create_task(self._drive(job), name=f"job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def cancel(self, job_id: str) -> bool:
        """Cancel the call that carries this job; its replica stops the job at its next step."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.cancel_flag.set()
        call = self._calls.get(job_id)
        if call is not None:
            call.cancel()
        self._finish(job, JobCancelled())
        return True

    def find(self, job_id: str) -> Job[GenerationResponse] | None:
        """A job in flight by id."""
        return self._jobs.get(job_id)

    def find_running(self) -> list[Job[GenerationResponse]]:
        """The jobs some replica is rendering now."""
        return [self._jobs[i] for i, p in self._positions.items() if p == 0 and i in self._jobs]

    def position(self, job: Job[GenerationResponse]) -> int:
        """The position its replica last reported (0 = rendering)."""
        return self._positions.get(job.id, 0)

    def eta_s(self, position: int) -> float:
        """A rough wait estimate, as the in-process scheduler makes it."""
        return eta_estimate(self.stats.last_batch_seconds, position, self._settings.max_batch)

    async def drain(self) -> None:
        """Stop accepting jobs and wait for those in flight."""
        self._closing = True
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _drive(self, job: Job[GenerationResponse]) -> None:
        spec = JobSpec(job_id=job.id, user=job.user, priority=job.priority, plan=job.plan)
        handle = self._renderer.options(stream=True, multiplexed_model_id=job.plan.model)
        for attempt in range(self._settings.serve.retries + 1):
            if attempt:
                self.retries += 1
                log.warning("job %s lost its replica; running it again (attempt %d)", job.id, attempt + 1)
                await asyncio.sleep(min(2.0, 0.25 * 2**attempt))  # Serve needs a moment to route around it
            call: Any = handle.run.remote(spec)  # a DeploymentResponseGenerator (stream=True)
            self._calls[job.id] = call
            started = 0.0
            try:
                async for item in call:
                    if isinstance(item, Progress):
                        if item.kind == "queued":
                            self._positions[job.id] = item.data["position"]
                        elif item.kind == "started":
                            self._positions[job.id] = 0
                            started = time.monotonic()
                        if job.events is not None:
                            job.events.put_nowait(item)
                        continue
                    if started:
                        self.stats.last_batch_seconds = time.monotonic() - started
                    self._finish(job, item.exception() if isinstance(item, Failure) else item)
                    return
                self._finish(job, WorkerError("the replica ended the job without an answer"))
                return
            except REPLICA_DIED:
                continue
            except BackPressureError as exc:
                self.stats.rejected_full += 1
                retry = exc.retry_after_s if getattr(exc, "retry_after_s", None) else self.eta_s(self.depth)
                self._finish(job, QueueBusy("every replica is busy", retry or 1.0))
                return
            except (RequestCancelledError, asyncio.CancelledError):
                self._finish(job, JobCancelled())
                return
            except Exception as exc:
                self._finish(job, exc)
                return
            finally:
                self._calls.pop(job.id, None)
        self._finish(job, WorkerError(f"the job lost {self._settings.serve.retries + 1} replicas in a row"))

    def _finish(self, job: Job[GenerationResponse], outcome: GenerationResponse | BaseException) -> None:
        self._jobs.pop(job.id, None)
        self._positions.pop(job.id, None)
        if not isinstance(outcome, BaseException):
            self._kept.put(job.id, outcome)
        settle(job, outcome, self.stats)


class ServeJobs:
    """Jobs on Ray Serve replicas, for the worker's HTTP front (see worker/jobs.py)."""

    def __init__(self, renderer: DeploymentHandle, settings: WorkerSettings) -> None:
        self._renderer = renderer
        self._settings = settings

    def open(self) -> ServeQueue:
        """The gateway's queue over the replicas."""
        return ServeQueue(self._renderer, self._settings)

    async def load(self) -> None:
        """Return once a replica answers (each loads its model before it takes calls)."""
        while True:
            try:
                await self._renderer.whoami.remote()
                return
            except REPLICA_DIED:
                await asyncio.sleep(0.5)

    async def describe(self, image: bytes) -> DescriptionResponse:
        """Caption on some replica; a replica's death is retried like a job's."""
        answer = await self._ask("describe", image, "the captioner")
        assert isinstance(answer, DescriptionResponse)
        return answer

    async def upscale(self, plan: UpscalePlan) -> UpscaleResponse:
        """Upscale on some replica; a replica's death is retried like a job's."""
        answer = await self._ask("upscale", plan, "the upscaler")
        assert isinstance(answer, UpscaleResponse)
        return answer

    async def _ask(self, method: str, argument: Any, what: str) -> Any:
        """One call of a replica's helper model; its failure raised here, a dead replica's call sent again."""
        for _ in range(self._settings.serve.retries + 1):
            try:
                answer = await getattr(self._renderer, method).remote(argument)
            except REPLICA_DIED:
                await asyncio.sleep(0.5)
                continue
            if isinstance(answer, Failure):
                raise answer.exception()
            return answer
        raise WorkerError(f"{what}'s replicas kept dying")

    def lessons(self) -> None:
        """Replicas do not train: /teach needs a single-box worker (`egaku worker`)."""
        return None

    def loaded(self) -> None:
        """Each replica holds its own presets; the gateway cannot say which."""
        return None

    def close(self) -> None:
        """Nothing to release: the replicas belong to Serve."""


class Gateway:
    """The front: the worker's own aiohttp app on [worker] host:port, its jobs sent to the replicas."""

    async def __init__(self, renderer: DeploymentHandle, settings: WorkerSettings) -> None:  # type: ignore[misc]
        from worker.engine import Engine  # plans requests against the presets; never loads a model here

        token = read_secret(settings.token_env, os.environ)
        check_exposure(settings, token)
        self._server = WorkerServer(Engine(settings), settings, token, jobs=ServeJobs(renderer, settings))
        self._runner = web.AppRunner(self._server.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, settings.host, settings.port).start()
        log.info("egaku gateway listening on http://%s:%s", settings.host, settings.port)

    def check_health(self) -> None:
        """Serve's health probe: the HTTP site must be up."""
        if not self._runner.sites:
            raise RuntimeError("the gateway's HTTP site is down")


def build_app(settings: WorkerSettings, make_engine: Callable[[WorkerSettings], Any] | None = None) -> Any:
    """The Serve application: N Renderer replicas behind one Gateway."""
    s = settings.serve
    renderer = serve.deployment(
        name="Renderer",
        num_replicas=s.replicas,
        # A replica takes as many calls as its own fair queue holds (plus a running batch), so
        # requests wait in the replica's Scheduler (fair) rather than in Serve's router (first come).
        max_ongoing_requests=settings.max_queue + settings.max_batch,
        max_queued_requests=s.max_queued_requests,
        ray_actor_options={"num_gpus": s.num_gpus, "num_cpus": s.num_cpus, "runtime_env": without_token(settings)},
        health_check_period_s=s.health_check_period_s,
    )(Renderer)
    gateway = serve.deployment(
        name="Gateway", num_replicas=1, max_ongoing_requests=4, ray_actor_options={"num_cpus": s.gateway_cpus}
    )(Gateway)
    return gateway.bind(renderer.bind(settings, make_engine), settings)


def without_token(settings: WorkerSettings) -> dict[str, Any]:
    """The renderers' runtime env: the token's variable blanked, since only the gateway answers HTTP.

    Ray hands every worker process the driver's environment; a replica that never checks a
    token should not hold one (nor show it to whoever can read its process environment).
    """
    return {"env_vars": {settings.token_env: ""}} if settings.token_env else {}


def deploy(
    settings: WorkerSettings, num_cpus: int | None = None, make_engine: Callable[[WorkerSettings], Any] | None = None
) -> str:
    """Join (or start, on this machine, on 127.0.0.1 only) a Ray cluster and deploy egaku; the front's URL."""
    import ray

    token = read_secret(settings.token_env, os.environ)
    check_exposure(settings, token)  # before anything starts: a front on the network needs a token
    address = settings.serve.address
    # Ray otherwise binds its own ports to the machine's network address. The front binds [worker] host.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    local = {} if address else {"_node_ip_address": "127.0.0.1", "num_cpus": num_cpus}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)  # type: ignore[arg-type]
    # The gateway serves HTTP itself: Serve's own proxy is not needed.
    serve.start(proxy_location="Disabled")
    serve.run(build_app(settings, make_engine), name=APP_NAME, route_prefix=None)
    return f"http://{settings.host}:{settings.port}"


def undeploy(settings: WorkerSettings) -> None:
    """Remove the app and leave the cluster; a cluster `deploy` started stops with it."""
    import ray

    serve.delete(APP_NAME)
    if not settings.serve.address:
        serve.shutdown()
    ray.shutdown()
