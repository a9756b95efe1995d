"""Runs the real EgakuBot against the fake Discord and fails tests on handler errors."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from agent.service import Agent
from bot.client import EgakuBot
from bot.run import point_at, upload_hosts
from bot.services import BotServices
from egaku.config import DiscordSettings
from tests.fakes.discord import FakeDiscord
from tools.backends.worker_client import WorkerClient
from tools.service.teaching import ConceptService
from tools.stores.history import History
from tools.stores.preferences import Preferences

# The tasks discord.py runs event listeners and app commands in (its own names for them).
HANDLER_TASKS = ("discord.py: ", "CommandTree-invoker")


async def settled(bot: EgakuBot, fake: FakeDiscord, timeout: float = 60.0) -> None:
    """Until the bot has read every event the fake dispatched and every handler they started has returned.

    After this nothing more can be sent for those events, so what the fake captured is final: a test
    counts deliveries then, instead of after a guessed sleep.
    """

    def handlers() -> list[asyncio.Task[object]]:
        me = asyncio.current_task()
        return [t for t in asyncio.all_tasks() if t is not me and t.get_name().startswith(HANDLER_TASKS)]

    async def wait() -> None:
        while True:
            # discord.py stores an event's sequence number just before it hands the event to its
            # parser, which starts the handler tasks; so once they match, those tasks exist.
            if bot.ws is None or bot.ws.sequence != fake.sequence:
                await asyncio.sleep(0.01)
            elif running := handlers():
                await asyncio.wait(running)  # then look again: more events may have come meanwhile
            else:
                return

    await asyncio.wait_for(wait(), timeout)


class HandlerErrors(list[BaseException]):
    """Exceptions that discord.py would only have logged."""


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    agent: Agent,
    *,
    sync: bool = False,
    message_content: bool = True,
    history: History | None = None,
    session: aiohttp.ClientSession | None = None,
    services: BotServices | None = None,
    reconnect: bool = False,
    preferences: Preferences | None = None,
    worker: WorkerClient | None = None,
    concepts: ConceptService | None = None,
    sync_guild_ids: tuple[int, ...] = (),
) -> AsyncIterator[EgakuBot]:
    """Log in, connect, wait for the guild; close and check for handler errors on exit."""
    settings = DiscordSettings(
        api_base=fake.api_base,
        gateway_url=fake.gateway_url,
        sync_commands=sync,
        token_env="TEST_TOKEN",
        sync_guild_ids=list(sync_guild_ids),
    )
    point_at(settings)
    services = services or BotServices(
        agent=agent,
        images=agent.images,
        history=history,
        session=session,
        upload_hosts=upload_hosts(settings),
        preferences=preferences,
        worker=worker,
        concepts=concepts,
        # No status messages unless a test asks for them (tests/bot/test_progress.py): on a loaded
        # machine a render can pass the 2 s mark, and its status post would race the result.
        status_after_s=3600.0,
    )
    bot = EgakuBot(services, settings, message_content=message_content, guild_ready_timeout=0.05)
    errors = HandlerErrors()

    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        errors.append(sys.exc_info()[1] or RuntimeError(event))

    bot.on_error = on_error  # type: ignore[method-assign]
    await bot.login("fake-token")
    task = asyncio.create_task(bot.connect(reconnect=reconnect))
    try:
        await fake.wait_ready()
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
    if task.done() and not task.cancelled() and task.exception():
        raise AssertionError(f"the gateway task died: {task.exception()!r}")
    assert not errors, f"handler errors: {errors!r}"
