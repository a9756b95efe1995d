"""The worker over HTTP: OpenAI Images shape, bounds, auth, errors."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from pathlib import Path

import aiohttp
import openai
import pytest
import torch
from PIL import Image

from tests.conftest import serve, tiny_worker_settings
from worker.engine import Engine
from worker.http import WorkerServer, check_exposure
from worker.http.cancels import EarlyCancels
from worker.pipelines import Placement, load_pipeline
from worker.protocol import EditRequest, GenerationRequest, GenerationResponse
from worker.settings import ModelPreset
from worker.tiny import TINY_CAPTION_WORDS


async def post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_round_trip_returns_png_seed_and_parameters(worker_url: str) -> None:
    status, body = await post(
        worker_url + "/v1/images/generations",
        {"prompt": "a red fox", "seed": 42, "n": 2, "negative_prompt": "blurry", "steps": 3, "guidance": 4.5},
    )
    assert status == 200
    parsed = GenerationResponse.model_validate(body)
    assert [d.seed for d in parsed.data] == [42, 43]
    used = parsed.data[0].parameters
    assert used.model_dump() == {
        "model": "tiny",
        "width": 64,
        "height": 64,
        "steps": 3,
        "guidance": 4.5,
        "seed": 42,
        "negative_prompt": "blurry",
        "strength": None,
        "mode": "generate",
        "adapters": [],
        "concepts": [],
        "style": None,
        "safety_checked": False,
        "outpaint": None,
        "references": 0,
        "reference_role": None,
        "reference_scale": None,
    }
    png = base64.b64decode(parsed.data[0].b64_json)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (64, 64)
    assert not image.info  # re-encoded from pixels: no text chunks or metadata


async def test_same_seed_same_image_and_batch_matches_single(worker_url: str) -> None:
    url = worker_url + "/v1/images/generations"
    _, batch = await post(url, {"prompt": "a fox", "seed": 9, "n": 2})
    _, single = await post(url, {"prompt": "a fox", "seed": 10})
    assert batch["data"][1]["seed"] == 10
    a = Image.open(io.BytesIO(base64.b64decode(batch["data"][1]["b64_json"])))
    b = Image.open(io.BytesIO(base64.b64decode(single["data"][0]["b64_json"])))
    diff = max(abs(x - y) for pa, pb in zip(a.getdata(), b.getdata(), strict=True) for x, y in zip(pa, pb, strict=True))
    assert diff <= 2  # batched matmuls may round differently in the last bit


async def test_aspect_and_model_choice(worker_url: str) -> None:
    _, body = await post(
        worker_url + "/v1/images/generations", {"prompt": "a fox", "aspect": "16:9", "model": "tiny-alt"}
    )
    used = body["data"][0]["parameters"]
    assert (used["width"], used["height"], used["model"], used["steps"]) == (80, 48, "tiny-alt", 3)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a fox", "steps": 100000}, "steps"),
        ({"prompt": "a fox", "size": "8192x8192"}, "size"),
        ({"prompt": "a fox", "size": "256x256"}, "size"),  # over the preset's pixel cap
        ({"prompt": "a fox", "n": 50}, "n"),
        ({"prompt": "a fox", "seed": -5}, "seed"),
        ({"prompt": "a fox", "model": "nope"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a fox", "response_format": "link"}, "response_format"),
        ({"prompt": "a fox", "frame_count": 4}, "frame_count"),
    ],
)
async def test_bounds_answer_400_with_a_clear_message(worker_url: str, body: dict, param: str) -> None:
    status, answer = await post(worker_url + "/v1/images/generations", body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param
    assert "Traceback" not in answer["error"]["message"]


async def test_invalid_json_is_a_400(worker_url: str) -> None:
    url = worker_url + "/v1/images/generations"
    as_json = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(url, data=b"{nope", headers=as_json) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["message"] == "the body is not valid JSON"


async def test_models_and_health(worker_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(worker_url + "/v1/models") as resp:
            assert {"tiny", "tiny-alt", "dall-e-3"} <= {m["id"] for m in (await resp.json())["data"]}
        async with session.get(worker_url + "/healthz") as resp:
            health = await resp.json()
    # The session's shared engine may hold tiny-alt too, from earlier tests; the default is always loaded.
    assert health.pop("loaded") in (["tiny"], ["tiny", "tiny-alt"])
    assert health == {"status": "ok", "models": ["tiny", "tiny-alt"], "upscaler": None}


async def test_bearer_token_is_required_when_set(engine: object, worker_cache: Path) -> None:
    server = WorkerServer(engine, tiny_worker_settings(worker_cache), token="s3cret")  # type: ignore[arg-type]
    runner, url = await serve(server.app())
    try:
        status, body = await post(url + "/v1/images/generations", {"prompt": "a fox"})
        assert (status, body["error"]["code"]) == (401, "invalid_api_key")
        status, _ = await post(url + "/v1/images/generations", {"prompt": "a fox"}, {"Authorization": "Bearer s3cret"})
        assert status == 200
    finally:
        await runner.cleanup()


def test_exposed_worker_needs_a_token(worker_cache: Path) -> None:
    exposed = tiny_worker_settings(worker_cache, host="0.0.0.0")
    with pytest.raises(SystemExit, match="without a token"):
        check_exposure(exposed, None)
    check_exposure(exposed, "token")
    check_exposure(tiny_worker_settings(worker_cache), None)


class _FailingPipe:
    """A real pipeline whose next calls raise (a simulated OOM, or a bug), then work again."""

    def __init__(self, real: object, failures: list[BaseException]) -> None:
        self._real = real
        self._failures = failures

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def __call__(self, *args: object, **kwargs: object) -> object:
        if self._failures:
            raise self._failures.pop(0)
        return self._real(*args, **kwargs)  # type: ignore[operator]


def engine_failing_with(cache: Path, *failures: BaseException) -> Engine:
    """A real Engine on the tiny model whose first renders raise the given errors."""
    pending = list(failures)

    def loader(preset: ModelPreset, placement: Placement, cache_dir: Path) -> object:
        return _FailingPipe(load_pipeline(preset, placement, cache_dir), pending)

    return Engine(tiny_worker_settings(cache, warmup=False), loader=loader)


async def test_oom_fails_only_that_job(worker_cache: Path) -> None:
    engine = engine_failing_with(worker_cache, torch.OutOfMemoryError("CUDA out of memory"))
    server = WorkerServer(engine, tiny_worker_settings(worker_cache), token=None)
    runner, url = await serve(server.app())
    try:
        status, body = await post(url + "/v1/images/generations", {"prompt": "a fox"})
        assert (status, body["error"]["code"]) == (503, "out_of_memory")
        assert "try a smaller size" in body["error"]["message"]
        status, _ = await post(url + "/v1/images/generations", {"prompt": "a fox"})
        assert status == 200
    finally:
        await runner.cleanup()


async def test_internal_errors_leak_nothing(worker_cache: Path) -> None:
    engine = engine_failing_with(worker_cache, RuntimeError("secret internal detail /opt/models/private"))
    server = WorkerServer(engine, tiny_worker_settings(worker_cache), token=None)
    runner, url = await serve(server.app())
    try:
        status, body = await post(url + "/v1/images/generations", {"prompt": "a fox"})
        assert status == 500
        assert body["error"]["message"].startswith("internal error (id ")
        assert "secret" not in str(body)
    finally:
        await runner.cleanup()


class _Gated:
    """The real engine, but batches wait for a gate: lets tests fill the queue."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.gate = threading.Event()
        self.model_names = real.model_names
        self.memory = real.memory

    @property
    def loaded(self) -> list[str]:
        return self.real.loaded

    def load(self, name: str | None = None) -> None:
        self.real.load(name)

    def plan(self, request: GenerationRequest, job_id: str = "") -> object:
        return self.real.plan(request, job_id)

    def plan_edit(
        self, request: EditRequest, image: bytes, mask: bytes | None, job_id: str = "", **extra: object
    ) -> object:
        return self.real.plan_edit(request, image, mask, job_id, **extra)  # type: ignore[arg-type]

    def run_batch(self, jobs: object, report: object) -> list[object]:
        self.gate.wait(30)
        return self.real.run_batch(jobs, report)  # type: ignore[arg-type]


async def test_official_openai_client_generates_and_edits(worker_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=worker_url + "/v1", api_key="unused", max_retries=0)
    result = await client.images.generate(
        model="tiny", prompt="a red fox", size="64x64", response_format="b64_json", n=1
    )
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or "")))
    assert image.size == (64, 64)
    upload = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(upload, format="PNG")
    edited = await client.images.edit(image=("in.png", upload.getvalue(), "image/png"), prompt="make it night", n=1)
    assert edited.data[0].b64_json
    models = await client.models.list()
    assert [m.id async for m in models] == [
        "chatgpt-image-latest", "dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5",
        "gpt-image-2", "tiny", "tiny-alt",
    ]  # fmt: skip
    await client.close()


async def test_progress_stream_order(worker_url: str) -> None:
    body = {"prompt": "a fox", "seed": 4, "steps": 3, "stream": True, "stream_format": "egaku", "job_id": "stream-1"}
    events: list[tuple[str, dict]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(worker_url + "/v1/images/generations", json=body) as resp,
    ):
        assert resp.headers["Content-Type"] == "text/event-stream"
        raw = (await resp.read()).decode()
    for block in raw.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    kinds = [k for k, _ in events]
    assert kinds == ["queued", "started", "step", "preview", "step", "preview", "step", "completed"]
    assert events[0][1]["job_id"] == "stream-1" and events[0][1]["position"] == 1
    assert [d["step"] for k, d in events if k == "step"] == [1, 2, 3]
    assert events[-1][1]["job_id"] == "stream-1" and events[-1][1]["data"][0]["seed"] == 4


async def test_full_queue_answers_503_with_retry_after(engine: Engine, worker_cache: Path) -> None:
    gated = _Gated(engine)
    server = WorkerServer(gated, tiny_worker_settings(worker_cache, max_queue=1, max_batch=1), token=None)  # type: ignore[arg-type]
    runner, url = await serve(server.app())
    try:
        await asyncio.sleep(0.2)  # model load (the gate does not hold load)
        first = asyncio.create_task(post(url + "/v1/images/generations", {"prompt": "one", "user": "a"}))
        while not server.scheduler.find_running():
            await asyncio.sleep(0.01)
        second = asyncio.create_task(post(url + "/v1/images/generations", {"prompt": "two", "user": "b"}))
        while server.scheduler.depth < 1:
            await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/v1/images/generations", json={"prompt": "three"}) as resp:
                assert resp.status == 503
                assert int(resp.headers["Retry-After"]) >= 1
                assert (await resp.json())["error"]["code"] == "queue_full"
            async with session.get(url + "/metrics") as resp:
                metrics = await resp.text()
        assert "egaku_queue_depth 1" in metrics
        assert 'egaku_jobs_total{outcome="rejected_full"} 1' in metrics
        gated.gate.set()
        assert [(await first)[0], (await second)[0]] == [200, 200]
    finally:
        gated.gate.set()
        await runner.cleanup()


async def test_cancel_and_status_by_job_id(engine: Engine, worker_cache: Path) -> None:
    gated = _Gated(engine)
    server = WorkerServer(gated, tiny_worker_settings(worker_cache, max_batch=1), token=None)  # type: ignore[arg-type]
    runner, url = await serve(server.app())
    try:
        await asyncio.sleep(0.2)
        running = asyncio.create_task(post(url + "/v1/images/generations", {"prompt": "a", "job_id": "j1"}))
        queued = asyncio.create_task(post(url + "/v1/images/generations", {"prompt": "b", "job_id": "j2"}))
        while server.scheduler.find("j2") is None:
            await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/v1/images/jobs/j2") as resp:
                assert (await resp.json())["position"] == 1
            async with session.delete(url + "/v1/images/jobs/j2") as resp:
                assert await resp.json() == {"id": "j2", "cancelled": True}
            async with session.delete(url + "/v1/images/jobs/nope") as resp:
                assert resp.status == 404
        status, body = await queued
        assert (status, body["error"]["code"]) == (409, "cancelled")
        gated.gate.set()
        assert (await running)[0] == 200
    finally:
        gated.gate.set()
        await runner.cleanup()


async def test_a_cancel_that_overtakes_its_job_still_cancels_it(worker_url: str) -> None:
    """The bot shows Cancel before its request reaches the worker; a press in that gap must not be lost."""
    async with aiohttp.ClientSession() as session, session.delete(worker_url + "/v1/images/jobs/early-1") as resp:
        assert resp.status == 404  # not here yet
    status, body = await post(worker_url + "/v1/images/generations", {"prompt": "a fox", "job_id": "early-1"})
    assert (status, body["error"]["code"]) == (409, "cancelled")
    status, again = await post(worker_url + "/v1/images/generations", {"prompt": "a fox", "job_id": "early-1"})
    assert (status, again["job_id"]) == (200, "early-1")  # the note is used once


def test_early_cancels_are_kept_a_while_and_bounded() -> None:
    now = [0.0]
    early = EarlyCancels(keep_s=60.0, limit=2, clock=lambda: now[0])
    for job_id in ("a", "b", "c"):
        early.remember(job_id)
    assert not early.claim("a")  # the oldest went past the limit
    now[0] = 60.0
    assert early.claim("b")
    now[0] = 60.1
    assert not early.claim("c")  # too old: a job under this id now is not the one cancelled
    assert not early.claim("b")  # used up


async def test_edit_endpoints_take_multipart_and_refuse_bad_images(worker_url: str) -> None:
    upload = io.BytesIO()
    Image.new("RGB", (72, 40), "green").save(upload, format="JPEG")
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("image", upload.getvalue(), filename="x.jpg", content_type="image/jpeg")
        form.add_field("prompt", "a castle")
        form.add_field("mask_prompt", "the tree")
        form.add_field("seed", "9")
        form.add_field("strength", "0.8")
        async with session.post(worker_url + "/v1/images/edits", data=form) as resp:
            body = await resp.json()
        assert resp.status == 200, body
        used = body["data"][0]["parameters"]
        assert (used["mode"], used["seed"], used["strength"], used["width"], used["height"]) == (
            "inpaint",
            9,
            0.8,
            72,
            40,
        )
        form = aiohttp.FormData()
        form.add_field("image", upload.getvalue(), filename="x.jpg", content_type="image/jpeg")
        async with session.post(worker_url + "/v1/images/variations", data=form) as resp:
            assert resp.status == 200 and (await resp.json())["data"][0]["parameters"]["mode"] == "img2img"
        form = aiohttp.FormData()
        form.add_field("image", b"\x89PNG\r\n\x1a\n truncated", filename="x.png", content_type="image/png")
        async with session.post(worker_url + "/v1/images/variations", data=form) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["param"] == "image"
        async with session.post(worker_url + "/v1/images/edits", json={"prompt": "x"}) as resp:
            assert resp.status == 400


async def test_a_job_past_its_time_limit_answers_504_and_is_cancelled(engine: Engine, worker_cache: Path) -> None:
    gated = _Gated(engine)
    settings = tiny_worker_settings(worker_cache, request_timeout_s=0.3)
    server = WorkerServer(gated, settings, token=None)  # type: ignore[arg-type]
    runner, url = await serve(server.app())
    try:
        await asyncio.sleep(0.2)
        status, body = await post(url + "/v1/images/generations", {"prompt": "slow", "job_id": "slow-1"})
        assert (status, body["error"]["code"]) == (504, "timeout")
        running = server.scheduler.find("slow-1")
        assert running is not None and running.cancel_flag.is_set()  # stops at its next step
        gated.gate.set()
        async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
            metrics = await resp.text()
        while 'egaku_jobs_total{outcome="cancelled"} 1' not in metrics:
            await asyncio.sleep(0.05)
            async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
                metrics = await resp.text()
        assert "egaku_step_seconds_count" in metrics
    finally:
        gated.gate.set()
        await runner.cleanup()


async def test_a_real_render_past_its_time_limit_stops_and_frees_the_render_thread(
    engine: Engine, worker_cache: Path
) -> None:
    """The real tiny pipeline, 4 pictures of 150 steps, a 3 s limit: 504, the render stops at a step, the next runs."""
    settings = tiny_worker_settings(worker_cache, request_timeout_s=3.0)
    server = WorkerServer(engine, settings, token=None)
    runner, url = await serve(server.app())
    try:
        await server._ready.wait()
        slow = {"prompt": "a fox", "steps": 150, "size": "128x128", "seed": 1, "n": 4}
        status, body = await post(url + "/v1/images/generations", slow)
        assert (status, body["error"]["code"]) == (504, "timeout")
        status, body = await post(url + "/v1/images/generations", {"prompt": "a fox", "steps": 2, "seed": 2})
        assert status == 200  # the render thread was free again: the slow job did not run to its end
        stats = server.scheduler.stats
        assert (stats.cancelled, stats.completed) == (1, 1)
        assert stats.steps < 150  # the slow job stopped at a step, far from its 150
    finally:
        await runner.cleanup()


async def test_an_edit_of_a_large_upload_is_drawn_at_the_models_own_size(engine: Engine) -> None:
    upload = io.BytesIO()
    Image.new("RGB", (1600, 1200), "teal").save(upload, format="PNG")
    plan = engine.plan_edit(EditRequest(prompt="a teal sea", strength=0.5), upload.getvalue(), None)
    assert (plan.size.width, plan.size.height) == (72, 48)  # within 64x64's pixels, its shape kept (4:3 -> 3:2)
    asked = engine.plan_edit(EditRequest(prompt="a teal sea", size="128x96"), upload.getvalue(), None)
    assert (asked.size.width, asked.size.height) == (128, 96)  # a size asked for is drawn, within the preset's cap


async def test_descriptions_caption_an_upload_and_refuse_bad_images(
    engine: Engine, worker_url: str, worker_cache: Path
) -> None:
    from worker.captions import Captioner
    from worker.pipelines import choose_placement

    picture = Image.new("RGB", (96, 64), "red")
    upload = io.BytesIO()
    picture.save(upload, format="PNG")
    expected = Captioner("tiny", choose_placement("cpu"), worker_cache).describe(picture)
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("image", upload.getvalue(), filename="x.png", content_type="image/png")
        async with session.post(worker_url + "/v1/images/descriptions", data=form) as resp:
            body = await resp.json()
        assert resp.status == 200, body
        assert (body["prompt"], body["model"]) == (expected, "tiny")
        assert expected and set(expected.split()) <= set(TINY_CAPTION_WORDS)  # words from the tiny vocabulary
        form = aiohttp.FormData()
        form.add_field("image", b"GIF89a broken", filename="x.gif", content_type="image/gif")
        async with session.post(worker_url + "/v1/images/descriptions", data=form) as resp:
            assert (resp.status, (await resp.json())["error"]["param"]) == (400, "image")
        async with session.post(worker_url + "/v1/images/descriptions", json={"image": "x"}) as resp:
            assert (resp.status, (await resp.json())["error"]["message"]) == (
                400, "send multipart/form-data with an `image` file",
            )  # fmt: skip


def test_tidy_removes_blip_tics() -> None:
    from worker.captions import tidy

    assert tidy("arafed cat sitting on a table .") == "cat sitting on a table"
    assert tidy("there is a red fox  in the snow") == "a red fox in the snow"
    assert tidy("a painting of a castle, ") == "a painting of a castle"
