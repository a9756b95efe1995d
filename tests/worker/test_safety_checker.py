"""The worker's CLIP safety checker hook, on tiny random checkers (one lets all pass, one flags all)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.conftest import serve, strict_safety_checker, tiny_worker_settings
from worker.engine import Engine
from worker.errors import ContentBlocked
from worker.http import WorkerServer
from worker.protocol import GenerationRequest


def engine_with(cache: Path, checker: str | None) -> Engine:
    return Engine(tiny_worker_settings(cache, safety_checker=checker, warmup=False))


def test_a_passing_check_is_recorded(worker_cache: Path) -> None:
    engine = engine_with(worker_cache, "tiny")
    result = engine.render(engine.plan(GenerationRequest(prompt="a fox", seed=1, safety_check=True)))
    assert result.data[0].parameters.safety_checked is True


def test_unchecked_requests_skip_the_checker(worker_cache: Path) -> None:
    engine = engine_with(worker_cache, strict_safety_checker(worker_cache))
    result = engine.render(engine.plan(GenerationRequest(prompt="a fox", seed=1)))
    assert result.data[0].parameters.safety_checked is False
    assert engine.aux._checker is None  # never even loaded


async def test_a_flagged_picture_is_blocked_with_a_clear_400(worker_cache: Path) -> None:
    strict = strict_safety_checker(worker_cache)
    engine = engine_with(worker_cache, strict)
    server = WorkerServer(engine, tiny_worker_settings(worker_cache, safety_checker=strict), token=None)
    runner, url = await serve(server.app())
    try:
        await server._ready.wait()
        async with aiohttp.ClientSession() as session:
            body = {"prompt": "a fox", "safety_check": True}
            async with session.post(url + "/v1/images/generations", json=body) as resp:
                answer = await resp.json()
        assert resp.status == 400
        assert answer["error"]["code"] == ContentBlocked.code == "content_policy_violation"
        assert answer["error"]["message"] == "the safety checker blocked this picture"
    finally:
        await runner.cleanup()


def test_asking_for_a_check_without_a_checker_is_refused(worker_cache: Path) -> None:
    import pytest

    from worker.errors import BadRequest

    engine = engine_with(worker_cache, None)
    with pytest.raises(BadRequest, match="no safety checker configured"):
        engine.plan(GenerationRequest(prompt="a fox", safety_check=True))
