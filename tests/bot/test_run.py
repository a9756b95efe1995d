"""Running the bot: a refused Message Content intent degrades, it does not stop the bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from bot.run import INTENT_HELP, run_bot
from bot.services import BotServices
from egaku.config import Config, DiscordSettings
from tests.bot.test_chat import app_for, channel_post
from tests.fakes.discord import BOT_ID, FakeDiscord
from tests.fakes.openai import FakeOpenAI, Say


async def test_refused_intent_reconnects_without_it(
    app_config: Config,
    fake_openai: FakeOpenAI,
    worker_url: str,
    fake_discord: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_discord.refuse_message_content = True
    fake_openai.then(Say("still here"))
    settings = DiscordSettings(
        api_base=fake_discord.api_base, gateway_url=fake_discord.gateway_url, sync_commands=False
    )
    async with app_for(app_config, fake_openai, worker_url) as app:
        with caplog.at_level(logging.ERROR, logger="bot.run"):
            task = asyncio.create_task(run_bot(BotServices(agent=app.agent, images=app.images), settings, "fake-token"))
            try:
                await fake_discord.wait_ready(timeout=30)
                await fake_discord.user_message(f"<@{BOT_ID}> hello?")
                post = await fake_discord.wait_for_request(channel_post)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert fake_discord.identify_count == 2
    intents = [f["d"]["intents"] for f in fake_discord.gateway_frames if f["op"] == 2]
    assert [bool(i & (1 << 15)) for i in intents] == [True, False]
    assert post.json["content"] == "still here"  # mentions still carry their content
    assert INTENT_HELP in caplog.text
