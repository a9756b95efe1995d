"""`python -m worker.healthcheck`, the worker image's HEALTHCHECK: 0 once ready, 1 while loading or away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import tiny_worker_settings
from tests.fakes.serving import loading_worker
from worker.healthcheck import main


async def check(url: str) -> int:
    return await asyncio.to_thread(main, [url])


async def test_ready(worker_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await check(worker_url) == 0
    assert capsys.readouterr().err == ""


async def test_loading(worker_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with loading_worker(tiny_worker_settings(worker_cache)) as url:
        assert await check(url) == 1
    assert capsys.readouterr().err == f"the worker at {url} is 'loading'\n"


async def test_nothing_there(capsys: pytest.CaptureFixture[str]) -> None:
    assert await check("http://127.0.0.1:9") == 1
    assert capsys.readouterr().err.startswith("no health from http://127.0.0.1:9: <urlopen error [Errno 111]")
