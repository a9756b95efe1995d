"""A busy server waits in line: twelve people at once with the default settings all get their pictures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.services import BotServices
from egaku.app import App
from egaku.config import Config
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.conftest import tiny_worker_settings
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say, Script
from tests.fakes.serving import serving_worker
from tests.worker.test_server import _Gated
from worker.engine import Engine

PEOPLE = range(101, 113)  # twelve people in one server
LATE = 113  # and one more, who changes their mind


def draw_for_everyone(body: dict[str, Any]) -> Script:
    """Each person's message becomes one picture, with the reply in the tool call."""
    if body["messages"][-1]["role"] == "tool":
        return Say("Here it is!")
    return Call("generate_image", {"prompt": "a red fox in fresh snow, watercolour", "reply": "Here it is!"})


@pytest.fixture
async def gated(engine: Engine, worker_cache: Path) -> AsyncIterator[tuple[_Gated, str]]:
    """The real worker whose renders wait for the test's signal (so that the line holds still while it is read)."""
    held = _Gated(engine)
    async with serving_worker(held, tiny_worker_settings(worker_cache)) as url:
        yield held, url
    held.gate.set()


def status_posts(fake: FakeDiscord) -> list[Captured]:
    return [r for r in fake.requests if r.method == "POST" and (r.json or {}).get("content", "").startswith("⏳")]


async def test_twelve_people_at_once_wait_in_line_with_their_places_and_all_get_their_pictures(
    app_config: Config, gated: tuple[_Gated, str], fake_discord: FakeDiscord
) -> None:
    held, url = gated
    llm = FakeOpenAI(responder=draw_for_everyone)
    await llm.start()
    try:
        async with app_for(app_config, llm, url) as app, running_bot(fake_discord, app.agent, services=now(app)):
            asked = [
                await fake_discord.user_message(f"<@{BOT_ID}> draw a fox", author_id=user, author_name=f"u{user}")
                for user in PEOPLE
            ]
            in_line = await fake_discord.wait_for_requests(lambda r: "in line" in (r.json or {}).get("content", ""), 4)
            late = await fake_discord.user_message(f"<@{BOT_ID}> draw a fox", author_id=LATE, author_name="late")
            fifth = await fake_discord.wait_for_request(lambda r: "5th in line" in (r.json or {}).get("content", ""))
            # The thirteenth changes their mind: Cancel on their status message takes them out of the line.
            status = next(m for m in fake_discord.messages.values() if m["content"].startswith("⏳ 5th in line"))
            cancel = status["components"][0]["components"][0]["custom_id"]
            await fake_discord.press(cancel, int(status["id"]), user_id=LATE)
            cancelled = await fake_discord.wait_for_request(lambda r: "Cancelled." in (r.json or {}).get("content", ""))
            held.gate.set()
            pictures = await fake_discord.wait_for_requests(lambda r: bool(r.files) and r.method == "POST", 12, 120)
            while await app.images.journal.unfinished():  # type: ignore[union-attr]
                await asyncio.sleep(0.02)
    finally:
        await llm.stop()
    assert app_config.limits.per_guild == 8 and app_config.limits.line >= 32  # the defaults
    places = sorted(re.match(r"⏳ (\d+)(st|nd|rd|th) in line", r.json["content"])[1] for r in in_line)  # type: ignore[index]
    assert places == ["1", "2", "3", "4"]  # the four past the server's cap of eight, each told their place
    for status in in_line:
        (button,) = [b for row in status.json["components"] for b in row["components"]]
        assert (button["label"], button["custom_id"][:13]) == ("Cancel", "egaku:cancel:")
    assert int(cancelled.json["message_reference"]["message_id"]) == int(late["id"]) and not cancelled.files
    assert fifth.json["components"][0]["components"][0]["custom_id"] == cancel
    replied = sorted(int(p.json["message_reference"]["message_id"]) for p in pictures)
    assert replied == sorted(int(m["id"]) for m in asked)  # everyone got exactly their own picture
    assert not [r for r in fake_discord.requests if "busy" in (r.json or {}).get("content", "").lower()]
    assert len(status_posts(fake_discord)) >= 4 and CHANNEL_ID


def now(app: App) -> BotServices:
    """The bot's services with status messages from the first moment (a place in line is worth showing)."""
    return BotServices(agent=app.agent, images=app.images, history=app.history, worker=app.worker, status_after_s=0.0)
