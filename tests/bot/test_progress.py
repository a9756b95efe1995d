"""While the GPU works: a status message with a cancel button; the chat keeps answering; cancel works."""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.services import BotServices
from egaku.app import open_app
from egaku.config import Config
from tests.agent.test_agent import configured
from tests.bot.harness import running_bot
from tests.bot.test_chat import channel_post
from tests.conftest import FAKE_ENV, serve, tiny_worker_settings
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord, Fault
from tests.fakes.openai import Call, FakeOpenAI, Say
from worker.engine import Engine
from worker.http import WorkerServer
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
async def watched_bot(
    config: Config, llm: FakeOpenAI, worker: str, fake: FakeDiscord, edit_s: float = 1.5
) -> AsyncIterator[None]:
    """The app and a bot that shows status messages after 50 ms."""
    async with open_app(configured(config, llm.base_url, worker), Path("unused.toml"), FAKE_ENV) as app:
        services = BotServices(
            agent=app.agent,
            images=app.images,
            history=app.history,
            worker=app.worker,
            status_after_s=0.05,
            status_edit_s=edit_s,
        )
        async with running_bot(fake, app.agent, services=services):
            yield


def status_posts(fake: FakeDiscord) -> list:
    return [r for r in fake.requests if channel_post(r) and r.json and r.json.get("components")
            and r.json["components"][0]["components"][0]["custom_id"].startswith("egaku:cancel:")]  # fmt: skip


async def test_status_chat_meanwhile_and_cancel_by_message(
    app_config: Config, fake_openai: FakeOpenAI, slow_worker: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow", "reply": "A fox!"}), Say("hi bob"))
    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        status = await fake_discord.wait_for_request(lambda r: r in status_posts(fake_discord))
        await fake_discord.user_message(f"<@{BOT_ID}> hello", author_id=21, author_name="bob")
        bob = await fake_discord.wait_for_request(lambda r: channel_post(r) and r.json.get("content") == "hi bob")
        await fake_discord.user_message(f"<@{BOT_ID}> やめて")
        final = await fake_discord.wait_for_request(
            lambda r: channel_post(r) and r.json.get("content") == "Cancelled.", timeout=60
        )
        deleted = await fake_discord.wait_for_request(lambda r: r.method == "DELETE")
    assert status.json["content"].startswith(("⏳", "🎨"))
    assert bob.json["content"] == "hi bob"  # the chat answered while the GPU worked
    assert final.json["content"] == "Cancelled."  # no image, no error id, no second model call
    assert final.files == []
    # "やめて" is Japanese: its answer is too (the drawing was asked for in English, so its end is English).
    assert any(r.json and r.json.get("content") == "絵の作成を取り消しています。" for r in fake_discord.requests)
    assert deleted.path.startswith(f"/api/v10/channels/{CHANNEL_ID}/messages/")  # the status message went away


async def test_cancel_button_is_for_the_owner(
    app_config: Config, fake_openai: FakeOpenAI, slow_worker: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow", "reply": "A fox!"}))
    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        status = await fake_discord.wait_for_request(lambda r: r in status_posts(fake_discord))
        custom_id = status.json["components"][0]["components"][0]["custom_id"]
        message_id = int(next(m for m in fake_discord.messages.values() if m.get("components"))["id"])
        bob = await fake_discord.press(custom_id, message_id, user_id=21, user_name="bob")
        refused = await fake_discord.wait_for_request(lambda r: r.path.endswith(f"/{bob['token']}/callback"))
        await fake_discord.press(custom_id, message_id)
        final = await fake_discord.wait_for_request(
            lambda r: channel_post(r) and r.json.get("content") == "Cancelled.", timeout=60
        )
    data = refused.json["data"]
    assert (data["content"], data["flags"], data["allowed_mentions"]) == (
        "Only the person who asked can cancel it.", 64, {"parse": []},
    )  # fmt: skip
    assert final.json["content"] == "Cancelled."


async def test_status_shows_step_percent_and_a_preview_at_a_polite_rate(
    app_config: Config, fake_openai: FakeOpenAI, slow_worker: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow", "reply": "A fox!"}))
    edit_s = 0.3

    def edits() -> list[Captured]:
        return [r for r in fake_discord.requests if r.method == "PATCH" and "/messages/" in r.path]

    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord, edit_s=edit_s):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        status = await fake_discord.wait_for_request(lambda r: r in status_posts(fake_discord))
        await fake_discord.wait_for_requests(lambda r: r in edits(), 3, timeout=60)
        await fake_discord.user_message(f"<@{BOT_ID}> cancel")
        deleted = await fake_discord.wait_for_request(lambda r: r.method == "DELETE", timeout=60)
    patched = edits()
    assert {r.path for r in patched} == {deleted.path}  # every edit went to the one status message
    with_preview = [r for r in [status, *patched] if r.files]
    assert with_preview, "no preview was ever shown"
    for request in with_preview:
        (preview,) = request.files
        assert preview.filename == "preview.png"
        picture = Image.open(io.BytesIO(preview.data))
        assert (picture.format, picture.size) == ("PNG", (64, 64))  # the 128x128 job's latents, decoded linearly
    steps = [r.json["content"] for r in patched if r.json and "%" in (r.json.get("content") or "")]
    assert steps and all(re.fullmatch(r"🎨 Drawing… \d{1,3}%( · about \d+ s left)?", text) for text in steps)
    gaps = [b.at - a.at for a, b in itertools.pairwise(patched)]
    assert min(gaps) >= edit_s * 0.9  # never faster than the configured edit rate


async def test_a_status_edit_discord_py_cannot_parse_never_takes_the_turn_down(
    app_config: Config, fake_openai: FakeOpenAI, slow_worker: str, fake_discord: FakeDiscord
) -> None:
    # A server that answers an edit with a body discord.py cannot read: a KeyError, not an HTTPException.
    fake_discord.faults.append(Fault("PATCH", f"/channels/{CHANNEL_ID}/messages/", 200, {}))
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow", "reply": "A fox!"}))

    def edits() -> list[Captured]:
        return [r for r in fake_discord.requests if r.method == "PATCH" and "/messages/" in r.path]

    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord, edit_s=0.05):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        await fake_discord.wait_for_requests(lambda r: r in edits(), 2, timeout=60)  # the broken one, then more
        await fake_discord.user_message(f"<@{BOT_ID}> cancel")
        final = await fake_discord.wait_for_request(
            lambda r: channel_post(r) and r.json.get("content") == "Cancelled.", timeout=60
        )
    assert fake_discord.faults[0].times == 0  # the unreadable answer was given
    assert final.json["content"] == "Cancelled."
