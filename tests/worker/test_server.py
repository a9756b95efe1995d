"""The worker over HTTP: OpenAI Images shape, bounds, auth, errors."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import aiohttp
import pytest
import torch
from PIL import Image

from tests.conftest import serve, tiny_worker_settings
from worker.engine import Engine
from worker.pipelines import Placement, load_pipeline
from worker.protocol import GenerationResponse
from worker.server import WorkerServer, check_exposure
from worker.settings import ModelPreset


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
        ({"prompt": "a fox", "response_format": "url"}, "response_format"),
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
    async with aiohttp.ClientSession() as session, session.post(url, data=b"{nope") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["message"] == "the body is not valid JSON"


async def test_models_and_health(worker_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(worker_url + "/v1/models") as resp:
            assert [m["id"] for m in (await resp.json())["data"]] == ["tiny", "tiny-alt"]
        async with session.get(worker_url + "/healthz") as resp:
            assert await resp.json() == {"status": "ok", "models": ["tiny", "tiny-alt"]}


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
