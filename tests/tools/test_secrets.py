"""A planted token reaches no log line, whatever goes wrong with the worker, OpenAI's API or the LLM.

aiohttp's errors repr the request they belong to, headers included, and APIs echo keys in
their error bodies: egaku logs an exception's class, status and OS error text only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from egaku.app import open_app
from egaku.config import Config, OpenAIBackendSettings
from egaku.errors import report
from egaku.i18n import ENGLISH_VOICE
from tests.agent.test_agent import configured, turn
from tests.conftest import serve
from tests.fakes.openai import FakeOpenAI
from tools.backends.openai_images import OpenAIImages
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService
from tools.service.requests import Draw, Failed, Refused, Requester
from worker.protocol import GenerationRequest

TOKEN = "sk-planted-CANARY-7f3a9c"


@contextlib.asynccontextmanager
async def raw_server(reply: bytes) -> AsyncIterator[str]:
    """A TCP server that answers every request with these exact bytes (malformed HTTP included)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def echoing_server(status: int) -> AsyncIterator[str]:
    """An HTTP server whose error body echoes the request's Authorization header, as text or in an
    OpenAI-shaped error (as OpenAI's own "Incorrect API key provided: ..." does)."""

    async def echo(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if request.path.endswith("/edits") or "json" in request.query:
            return web.json_response({"error": {"message": f"bad key {header}", "type": "x", "code": None}},
                                     status=status)  # fmt: skip
        return web.Response(status=status, text=f"denied: {header}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner, url = await serve(app)
    try:
        yield url
    finally:
        await runner.cleanup()


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured log line as a formatter writes it, tracebacks included."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


Failure = Callable[[str], Awaitable[object]]


async def through_the_service(client: object) -> object:
    """A draw through the image service, its failure reported to the user as the bot would."""
    outcome = await ImageService(client).draw(Requester(user_id="u", user_words="a fox"), Draw("a fox"))  # type: ignore[arg-type]
    assert isinstance(outcome, Failed | Refused)
    text = report(outcome.error, "test", ENGLISH_VOICE) if isinstance(outcome, Failed) else str(outcome.reason)
    assert TOKEN not in text
    return outcome


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",  # aiohttp: a ClientResponseError with the request
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: step\ndata: {not json\n\n",
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n<b>!",
        b"garbage\r\n\r\n",
    ],
)
async def test_a_broken_worker_answer_logs_no_token(reply: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with raw_server(reply) as url, aiohttp.ClientSession() as session:
        await through_the_service(WorkerClient(session, url, token=TOKEN, timeout_s=10))
    assert caplog.records and TOKEN not in logged(caplog)


async def test_an_unreachable_or_echoing_worker_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        await through_the_service(WorkerClient(session, "http://127.0.0.1:9", token=TOKEN, timeout_s=5))
        for status in (400, 401, 500, 503):
            async with echoing_server(status) as url:
                await through_the_service(WorkerClient(session, url, token=TOKEN, timeout_s=5))
                await through_the_service(WorkerClient(session, f"{url}/json?json=1#", token=TOKEN, timeout_s=5))
        async with echoing_server(200) as url:  # a 200 whose body is not a response
            await through_the_service(WorkerClient(session, url, token=TOKEN, timeout_s=5))
    assert TOKEN not in logged(caplog)


async def test_openais_images_api_failing_logs_no_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        for status in (400, 401, 429, 500):
            async with echoing_server(status) as url:
                api = OpenAIImages(session, OpenAIBackendSettings(base_url=url), TOKEN)
                await through_the_service(api)
                with contextlib.suppress(Exception):
                    await api.generate(GenerationRequest(prompt="a fox"))
        async with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n") as url:
            await through_the_service(OpenAIImages(session, OpenAIBackendSettings(base_url=url), TOKEN))
    assert TOKEN not in logged(caplog)


async def test_an_llm_that_fails_logs_no_key(
    app_config: Config, worker_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for status in (401, 500):
        async with echoing_server(status) as url:
            config = configured(app_config, f"{url}/v1", worker_url)
            async with open_app(config, Path("unused.toml"), {"FAKE_OPENAI_KEY": TOKEN}) as app:
                with pytest.raises(Exception) as failed:
                    await app.agent.respond(turn("draw a fox"))
                assert TOKEN not in report(failed.value, "chat", ENGLISH_VOICE)
    assert TOKEN not in logged(caplog)


async def test_the_fake_llm_still_works_with_the_planted_key(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    """The planted key is a real key as far as the client goes: the tests above do fail for the right reason."""
    from tests.fakes.openai import Say

    fake_openai.then(Say("hello"))
    config = configured(app_config, fake_openai.base_url, worker_url)
    async with open_app(config, Path("unused.toml"), {"FAKE_OPENAI_KEY": TOKEN}) as app:
        assert (await app.agent.respond(turn("hi"))).reply == "hello"
    assert fake_openai.requests and "messages" in fake_openai.requests[0]
