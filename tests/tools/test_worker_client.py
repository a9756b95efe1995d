"""The worker client maps every worker answer to a typed result or a typed error."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from egaku.errors import WorkerBusy, WorkerFailed, WorkerLost, WorkerRejected, WorkerUnavailable
from tests.conftest import serve
from tests.fakes.broken_worker import Break, BrokenWorker
from tools.backends.base import ImageUpscale
from tools.backends.worker_client import WorkerClient
from worker.protocol import GenerationRequest, ProgressEvent, UpscaleRequest


def answering(status: int, body: object) -> web.Application:
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/v1/images/generations", handler)
    return app


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": {"message": "steps: too many", "type": "invalid_request_error"}}, WorkerRejected),
        (503, {"error": {"message": "out of GPU memory", "type": "server_error"}}, WorkerBusy),
        (500, {"error": {"message": "internal error (id 1)", "type": "server_error"}}, WorkerFailed),
        (502, "<html>bad gateway</html>", WorkerFailed),
        (200, {"created": 1, "data": "nope"}, WorkerFailed),
    ],
)
async def test_answers_map_to_typed_errors(status: int, body: object, error: type[Exception]) -> None:
    runner, url = await serve(answering(status, body))
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(error):
                await WorkerClient(session, url).generate(GenerationRequest(prompt="a fox"))
    finally:
        await runner.cleanup()


async def test_unreachable_worker_is_unavailable() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(WorkerUnavailable):
            await WorkerClient(session, "http://127.0.0.1:9").generate(GenerationRequest(prompt="a fox"))


async def test_request_body_and_token_are_sent_exactly() -> None:
    seen: list[tuple[dict, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((await request.json(), request.headers.get("Authorization", "")))
        return web.json_response({"error": {"message": "stop here", "type": "x"}}, status=400)

    app = web.Application()
    app.router.add_post("/v1/images/generations", handler)
    runner, url = await serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            client = WorkerClient(session, url + "/", token="tkn")
            with pytest.raises(WorkerRejected, match="stop here"):
                await client.generate(GenerationRequest(prompt="a fox", seed=1, aspect="3:2", user="u1"))
    finally:
        await runner.cleanup()
    assert seen == [
        (
            {"prompt": "a fox", "user": "u1", "aspect": "3:2", "seed": 1},
            "Bearer tkn",
        )
    ]


@pytest.mark.parametrize("how", ["reset", "cut", "malformed", "garbage"])
async def test_a_connection_that_breaks_is_an_image_service_failure(how: Break) -> None:
    worker = BrokenWorker(how)
    await worker.start()
    seen: list[ProgressEvent] = []

    async def progress(event: ProgressEvent) -> None:
        seen.append(event)

    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(WorkerLost) as caught:
                await WorkerClient(session, worker.url).generate(GenerationRequest(prompt="a fox"), progress)
    finally:
        await worker.stop()
    assert caught.value.user_text == "The image service stopped while drawing your picture. Please try again."
    assert worker.calls == 1
    if how != "reset":
        assert [e.kind for e in seen] == ["queued"]


@pytest.mark.parametrize(
    "body",
    [
        {"created": 1, "data": [], "size": "128x128", "scale": 2, "model": "4x.safetensors"},  # no picture
        {"created": 1, "data": [{"b64_json": "not base64!"}], "size": "128x128", "scale": 2, "model": "4x"},
        {"created": 1, "data": [{"b64_json": "iVBO"}], "size": "huge", "scale": 2, "model": "4x"},
    ],
)
async def test_an_unreadable_upscale_is_a_worker_failure(body: object) -> None:
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v1/images/upscales", handler)
    runner, url = await serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(WorkerFailed, match="unreadable upscale"):
                await WorkerClient(session, url).upscale(ImageUpscale(UpscaleRequest(scale=2), b"png"))
    finally:
        await runner.cleanup()
