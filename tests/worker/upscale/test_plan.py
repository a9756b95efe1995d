"""Upscale requests: checked against the settings, then POST /v1/images/upscales end to end on a real worker."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from tests.conftest import tiny_worker_settings
from tests.fakes.serving import serving_worker
from tests.fakes.upscalers import esrgan_file, import_spandrel
from worker.engine import Engine
from worker.errors import BadRequest, JobCancelled, RenderTimeout
from worker.jobs import LocalJobs
from worker.pipelines import Placement
from worker.protocol import Size, UpscaleRequest, UpscaleResponse
from worker.upscale.network import Upscaler
from worker.upscale.plan import plan_upscale


def png(size: tuple[int, int], seed: int = 2) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), mode="RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 4x ESRGAN with random weights, as a user's safetensors file."""
    import_spandrel()
    return esrgan_file(tmp_path_factory.mktemp("upscaler") / "4x-tiny.safetensors")


def test_the_result_size_and_its_cap(worker_cache: Path, weights: Path) -> None:
    settings = tiny_worker_settings(worker_cache, upscaler=str(weights), upscale_max_pixels=128 * 128)
    plan = plan_upscale(settings, UpscaleRequest(scale=2), png((40, 24)), "job-1")
    assert (plan.size, plan.scale, plan.job_id, plan.picture.size) == (Size(width=80, height=48), 2, "job-1", (40, 24))
    # 4x would be 160x96 (15360 pixels): within 128x128 (16384).
    assert plan_upscale(settings, UpscaleRequest(scale=4), png((40, 24))).size == Size(width=160, height=96)
    # 4x of 64x64 would be 65536 pixels: scaled down to the cap, keeping the shape.
    assert plan_upscale(settings, UpscaleRequest(scale=4), png((64, 64))).size == Size(width=128, height=128)
    with pytest.raises(BadRequest, match="the picture is 128x128 already; this worker upscales to at most 16384"):
        plan_upscale(settings, UpscaleRequest(scale=2), png((128, 128)))


def test_a_worker_without_an_upscaler_says_so(worker_cache: Path) -> None:
    with pytest.raises(BadRequest, match="this worker has no upscaler: its operator sets \\[worker\\] upscaler"):
        plan_upscale(tiny_worker_settings(worker_cache), UpscaleRequest(), png((40, 24)))


@pytest.mark.parametrize("scale", [1, 3, 8])
def test_only_2x_and_4x(scale: int) -> None:
    with pytest.raises(ValidationError, match=f"scale is {scale}; the upscaler enlarges 2 or 4 times"):
        UpscaleRequest(scale=scale)


@pytest.fixture
async def upscaling_worker(worker_cache: Path, weights: Path) -> AsyncIterator[str]:
    """The real worker (tiny preset) with the tiny ESRGAN as its upscaler, tiled in 16-pixel tiles."""
    settings = tiny_worker_settings(worker_cache, upscaler=str(weights), upscale_tile=16, upscale_overlap=24)
    async with serving_worker(Engine(settings), settings) as url:
        yield url


async def upscale(url: str, picture: bytes, **fields: str) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("image", picture, filename="x.png", content_type="image/png")
    for name, value in fields.items():
        form.add_field(name, value)
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/images/upscales", data=form) as resp:
        return resp.status, await resp.json()


async def test_upscales_over_http(upscaling_worker: str, weights: Path) -> None:
    picture = png((40, 24))
    status, body = await upscale(upscaling_worker, picture, scale="4", job_id="up-1", output_format="png")
    assert status == 200, body
    answer = UpscaleResponse.model_validate(body)
    assert (answer.size, answer.scale, answer.model, answer.job_id) == ("160x96", 4, "4x-tiny.safetensors", "up-1")
    assert set(answer.timings) == {"load_s", "upscale_s", "encode_s"}
    out = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json)))
    # The very pixels the network makes untiled, within the tiles' rounding.
    cpu = Placement(device="cpu", dtype=torch.float32)
    whole = Upscaler(str(weights), cpu, allow_pickle=False, tile=4096, overlap=0).upscale(
        Image.open(io.BytesIO(picture)), Size(width=160, height=96)
    )
    assert np.abs(np.asarray(out, dtype=np.int16) - np.asarray(whole, dtype=np.int16)).max() <= 1
    async with aiohttp.ClientSession() as session, session.get(upscaling_worker + "/healthz") as resp:
        assert (await resp.json())["upscaler"] == "4x-tiny.safetensors"
    status, body = await upscale(upscaling_worker, picture, scale="3")
    assert (status, body["error"]["param"]) == (400, "scale")
    status, body = await upscale(upscaling_worker, b"\x89PNG\r\n\x1a\n truncated", scale="2")
    assert (status, body["error"]["param"]) == (400, "image")


async def test_without_an_upscaler_the_route_answers_400(worker_url: str) -> None:
    status, body = await upscale(worker_url, png((40, 24)), scale="2")
    assert status == 400
    assert (
        body["error"]["message"] == "this worker has no upscaler: its operator sets [worker] upscaler to a weights file"
    )
    async with aiohttp.ClientSession() as session, session.get(worker_url + "/healthz") as resp:
        assert (await resp.json())["upscaler"] is None


class Recording:
    """The real engine, keeping what each upscale ended with."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.ended: list[object] = []

    def upscale(self, plan: object, stop: threading.Event | None = None) -> object:
        try:
            answer = self.real.upscale(plan, stop)  # type: ignore[arg-type]
        except Exception as exc:
            self.ended.append(exc)
            raise
        self.ended.append(answer)
        return answer


async def test_an_upscale_past_the_time_limit_answers_504_and_stops_at_its_next_tile(
    worker_cache: Path, weights: Path
) -> None:
    settings = tiny_worker_settings(worker_cache, upscaler=str(weights), upscale_tile=16, request_timeout_s=0.05)
    engine = Recording(Engine(settings))
    jobs = LocalJobs(engine, settings)  # type: ignore[arg-type]
    plan = plan_upscale(settings, UpscaleRequest(scale=4), png((256, 192)))  # 192 tiles: far past 0.05 s
    try:
        with pytest.raises(RenderTimeout, match="the upscale ran past 0s"):
            await jobs.upscale(plan)
        while not engine.ended:
            await asyncio.sleep(0.05)
        assert isinstance(engine.ended[0], JobCancelled)
    finally:
        jobs.close()
