"""A local worker refuses browsers: foreign Host names, any Origin, cross-site fetches and text/plain JSON.

A worker on loopback without a token is reachable by every web page its user opens, unless it
refuses what only a page would send. Each refusal is a 403 in OpenAI's error shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import serve, tiny_worker_settings
from worker.http import WorkerServer

FORBIDDEN = "permission_error"


@contextlib.asynccontextmanager
async def worker(engine: object, cache: Path, token: str | None = None, **settings: object) -> AsyncIterator[str]:
    server = WorkerServer(engine, tiny_worker_settings(cache, **settings), token=token)  # type: ignore[arg-type]
    runner, url = await serve(server.app())
    try:
        await server._ready.wait()
        yield url
    finally:
        await runner.cleanup()


async def answer(
    method: str, url: str, *, headers: dict[str, str] | None = None, **body: object
) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers, **body) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Origin": "https://evil.example"}, "this worker does not serve web pages' requests"),
        ({"Origin": "null"}, "this worker does not serve web pages' requests"),
        ({"Sec-Fetch-Site": "cross-site"}, "this worker does not serve web pages' requests"),
        ({"Sec-Fetch-Site": "same-site"}, "this worker does not serve web pages' requests"),
        ({"Host": "evil.example"}, "this worker does not answer to that Host name; add it to [worker] allowed_hosts"),
        (
            {"Host": "rebound.example:7861"},
            "this worker does not answer to that Host name; add it to [worker] allowed_hosts",
        ),
    ],
)
async def test_what_only_a_web_page_sends_is_refused(
    engine: object, worker_cache: Path, headers: dict[str, str], message: str
) -> None:
    async with worker(engine, worker_cache) as url:
        for method, path, body in (
            ("POST", "/v1/images/generations", {"json": {"prompt": "a fox"}}),
            ("POST", "/v1/images/edits", {"data": {"prompt": "x"}}),
            ("GET", "/v1/models", {}),
            ("DELETE", "/v1/images/jobs/abc", {}),
        ):
            status, error = await answer(method, url + path, headers=headers, **body)
            assert (status, error["error"]["type"], error["error"]["message"]) == (403, FORBIDDEN, message)  # type: ignore[index]


async def test_a_text_plain_body_is_no_json_request(engine: object, worker_cache: Path) -> None:
    async with worker(engine, worker_cache) as url:
        status, error = await answer(
            "POST", url + "/v1/images/generations", data='{"prompt": "a fox"}', headers={"Content-Type": "text/plain"}
        )
    assert (status, error["error"]["message"]) == (403, "send the request as application/json")  # type: ignore[index]


async def test_its_own_names_and_ordinary_clients_are_served(engine: object, worker_cache: Path) -> None:
    async with worker(engine, worker_cache, allowed_hosts=["egaku.lan"]) as url:
        port = url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "egaku.lan", "[::1]:80", "LOCALHOST"):
            status, body = await answer("GET", url + "/v1/models", headers={"Host": host})
            assert status == 200, (host, body)
        status, _ = await answer("POST", url + "/v1/images/generations", json={"prompt": "a fox", "seed": 1},
                                 headers={"Sec-Fetch-Site": "none"})  # fmt: skip
        assert status == 200


async def test_with_a_token_a_proxys_host_is_fine_but_browsers_still_are_not(
    engine: object, worker_cache: Path
) -> None:
    bearer = {"Authorization": "Bearer tkn"}
    async with worker(engine, worker_cache, token="tkn") as url:
        status, _ = await answer("GET", url + "/v1/models", headers={**bearer, "Host": "gpu-host.example:7861"})
        assert status == 200
        status, error = await answer("GET", url + "/v1/models", headers={**bearer, "Origin": "https://a.example"})
        assert (status, error["error"]["type"]) == (403, FORBIDDEN)  # type: ignore[index]


async def test_links_point_at_the_worker_whatever_the_host_header_says(engine: object, worker_cache: Path) -> None:
    async with worker(engine, worker_cache, token="tkn") as url:
        headers = {"Authorization": "Bearer tkn", "Host": "attacker.example"}
        body = {"prompt": "a fox", "seed": 1, "response_format": "url"}
        status, answered = await answer("POST", url + "/v1/images/generations", json=body, headers=headers)
        link = answered["data"][0]["url"]  # type: ignore[index]
        assert status == 200 and link.startswith("http://127.0.0.1:7861/v1/images/files/"), link
        async with aiohttp.ClientSession() as session:  # an image link opens in a browser: no guard, no token
            moved = link.replace("http://127.0.0.1:7861", url)
            async with session.get(moved, headers={"Origin": "https://chat.example"}) as resp:
                assert resp.status == 200 and resp.content_type == "image/png"
