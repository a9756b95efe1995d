"""The doctor's fixtures: Discord after the real bot synced its commands, an HTTP session, a config file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from egaku.config import Config
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI

TOKEN = "MTIzNDU2.planted.discord-token-value"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One session, as the doctor has."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


@pytest.fixture
async def fresh_worker(worker_cache: Path) -> AsyncIterator[str]:
    """A real tiny worker of its own (the shared one may hold any preset by now): only its default is loaded."""
    from tests.conftest import tiny_worker_settings
    from tests.fakes.serving import serving_worker
    from worker.engine import Engine

    settings = tiny_worker_settings(worker_cache)
    async with serving_worker(Engine(settings), settings) as url:
        yield url


@pytest.fixture
async def synced(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> FakeDiscord:
    """The fake Discord after the real bot started once with sync on (global commands); then it wants TOKEN."""
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent, sync=True):
        await fake_discord.wait_for_request(lambda r: r.method == "PUT" and r.path.endswith("/commands"))
    fake_discord.token = TOKEN
    return fake_discord


def config_file(
    tmp_path: Path, *, discord: FakeDiscord, llm_url: str, worker_url: str, worker_token_env: str | None = None
) -> Path:
    """A bot config for the fakes: Discord, an OpenAI-compatible LLM (key in LLM_KEY), a remote tiny worker."""
    token_line = f'token_env = "{worker_token_env}"\n' if worker_token_env else ""
    text = f"""
[discord]
api_base = "{discord.api_base}"
gateway_url = "{discord.gateway_url}"

[llm]
provider = "openai"
base_url = "{llm_url}"
api_key_env = "LLM_KEY"
model = "fake-model"
max_retries = 0

[storage]
path = "{tmp_path}/data/egaku.sqlite"
images_dir = "{tmp_path}/data/images"
history_dir = "{tmp_path}/data/history"

[backend]
mode = "remote"
url = "{worker_url}"

[worker]
{token_line}default_model = "tiny"

[worker.models.tiny]
source = "tiny"
width = 64
height = 64

[worker.models.tiny-alt]
source = "tiny"
width = 64
height = 64
"""
    path = tmp_path / "egaku.toml"
    path.write_text(text, encoding="utf-8")
    return path
