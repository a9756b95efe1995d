"""While the GPU works: a status message with a cancel button; the chat keeps answering; cancel works."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import BotServices
from egaku.app import open_app
from egaku.config import Config
from tests.agent.test_agent import configured
from tests.bot.harness import running_bot
from tests.bot.test_chat import channel_post
from tests.conftest import FAKE_ENV, serve, tiny_worker_settings
from tests.fakes.discord import BOT_ID, CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from worker.engine import Engine
from worker.server import WorkerServer
from worker.settings import ModelPreset


@pytest.fixture
async def slow_worker(worker_cache: Path) -> AsyncIterator[str]:
    """The real worker with a preset slow enough to watch (and cancel): 150 steps at 128x128."""
    slow = ModelPreset(source="tiny", steps=150, width=128, height=128)
    settings = tiny_worker_settings(worker_cache, models={"tiny": slow}, warmup=False)
    server = WorkerServer(Engine(settings), settings, token=None)
    runner, url = await serve(server.app())
    await server._ready.wait()
    yield url
    await runner.cleanup()


@contextlib.asynccontextmanager
async def watched_bot(config: Config, llm: FakeOpenAI, worker: str, fake: FakeDiscord) -> AsyncIterator[None]:
    """The app and a bot that shows status messages after 50 ms."""
    async with open_app(configured(config, llm.base_url, worker), Path("unused.toml"), FAKE_ENV) as app:
        services = BotServices(agent=app.agent, history=app.history, worker=app.worker, status_after_s=0.05)
        async with running_bot(fake, app.agent, services=services):
            yield


def status_posts(fake: FakeDiscord) -> list:
    return [r for r in fake.requests if channel_post(r) and r.json and r.json.get("components")
            and r.json["components"][0]["components"][0]["custom_id"].startswith("egaku:cancel:")]  # fmt: skip


async def test_status_chat_meanwhile_and_cancel_by_message(
    app_config: Config, fake_openai: FakeOpenAI, slow_worker: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow"}), Say("hi bob"), Say("Stopped."))
    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        status = await fake_discord.wait_for_request(lambda r: r in status_posts(fake_discord))
        await fake_discord.user_message(f"<@{BOT_ID}> hello", author_id=21, author_name="bob")
        bob = await fake_discord.wait_for_request(lambda r: channel_post(r) and r.json.get("content") == "hi bob")
        await fake_discord.user_message(f"<@{BOT_ID}> やめて")
        final = await fake_discord.wait_for_request(
            lambda r: channel_post(r) and (r.json.get("content") or "").startswith("Stopped."), timeout=60
        )
        deleted = await fake_discord.wait_for_request(lambda r: r.method == "DELETE")
    assert status.json["content"].startswith(("⏳", "🎨"))
    assert bob.json["content"] == "hi bob"  # the chat answered while the GPU worked
    assert final.json["content"] == "Stopped.\n\nCancelled."  # no image, no error id
    assert final.files == []
    assert any(r.json and r.json.get("content") == "Cancelling your picture." for r in fake_discord.requests)
    assert deleted.path.startswith(f"/api/v10/channels/{CHANNEL_ID}/messages/")  # the status message went away


async def test_cancel_button_is_for_the_owner(
    app_config: Config, fake_openai: FakeOpenAI, slow_worker: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow"}), Say("Stopped."))
    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        status = await fake_discord.wait_for_request(lambda r: r in status_posts(fake_discord))
        custom_id = status.json["components"][0]["components"][0]["custom_id"]
        message_id = int(next(m for m in fake_discord.messages.values() if m.get("components"))["id"])
        bob = await fake_discord.press(custom_id, message_id, user_id=21, user_name="bob")
        refused = await fake_discord.wait_for_request(lambda r: r.path.endswith(f"/{bob['token']}/callback"))
        await fake_discord.press(custom_id, message_id)
        final = await fake_discord.wait_for_request(
            lambda r: channel_post(r) and (r.json.get("content") or "").startswith("Stopped."), timeout=60
        )
    data = refused.json["data"]
    assert (data["content"], data["flags"], data["allowed_mentions"]) == (
        "Only the person who asked can cancel it.", 64, {"parse": []},
    )  # fmt: skip
    assert final.json["content"].endswith("Cancelled.")
