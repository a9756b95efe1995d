"""The discord.py bot: intents, allowed mentions, extensions and the command tree."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from agent.service import Agent
from bot.progress import JobRegistry
from bot.results import SeenOnce
from egaku.config import DiscordSettings
from egaku.errors import report
from tools.backends import ImageWorker
from tools.concepts import Concepts
from tools.history import History
from tools.preferences import Preferences
from tools.service import ImageService

log = logging.getLogger(__name__)

SYNC_FAILED = (
    "could not sync the slash commands; carrying on without them (mentions, replies and DMs still work). "
    "They will be synced at the next start."
)
CRASH_BACKOFF_MAX_S = 60.0


@dataclass(frozen=True)
class BotServices:
    """What the extensions need, injected once."""

    agent: Agent
    images: ImageService  # the image service the buttons and /imagine raw call (the agent's tools share it)
    history: History | None = None
    session: aiohttp.ClientSession | None = None  # the process's one session, for attachments
    upload_hosts: frozenset[str] = frozenset()  # hosts besides Discord's CDN that attachments may come from
    models: tuple[str, ...] = ()  # the worker presets users may pick
    worker: ImageWorker | None = None  # for cancelling jobs and /describe
    status_after_s: float = 2.0  # jobs shorter than this get no status message
    status_edit_s: float = 1.5  # at most one status edit per this long (Discord allows ~5 per 5 s)
    preferences: Preferences | None = None  # /settings
    concepts: Concepts | None = None  # /teach and /concepts


def intents_for(message_content: bool) -> discord.Intents:
    """Default intents, plus message content when the operator enabled it."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    return intents


class EgakuBot(commands.Bot):
    """The bot. Chat and slash commands live in extensions under bot/exts."""

    def __init__(
        self,
        services: BotServices,
        settings: DiscordSettings,
        *,
        message_content: bool = True,
        guild_ready_timeout: float = 2.0,
        crash_backoff_s: float = 1.0,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents_for(message_content),
            # Nothing the model writes may ever ping anyone.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            guild_ready_timeout=guild_ready_timeout,
        )
        self.services = services
        self.settings = settings
        # Interactions replayed after a RESUME, and double presses, must not run twice.
        self.seen = SeenOnce()
        self.jobs = JobRegistry()
        self.message_content = message_content
        self.crash_backoff_s = crash_backoff_s

    async def setup_hook(self) -> None:
        """Load extensions and, if configured, sync slash commands."""
        from bot.exts.buttons import ResultButton
        from bot.exts.chat import Chat
        from bot.exts.describe import Describe, ImagineThis
        from bot.exts.imagine import Imagine
        from bot.exts.settings import Settings
        from bot.exts.teach import Teach
        from bot.progress import CancelButton

        self.add_dynamic_items(ResultButton, CancelButton, ImagineThis)
        await self.add_cog(Chat(self))
        await self.add_cog(Describe(self))
        await self.add_cog(Imagine(self))
        await self.add_cog(Settings(self))
        await self.add_cog(Teach(self))
        self.tree.error(self.on_app_command_error)
        if self.settings.sync_commands:
            await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register the slash commands; a failure is logged, and mentions and DMs still work."""
        try:
            for guild_id in self.settings.sync_guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            if not self.settings.sync_guild_ids:
                await self.tree.sync()
        except Exception:
            log.exception(SYNC_FAILED)

    async def connect(self, *, reconnect: bool = True) -> None:
        """discord.py's gateway loop, restarted with backoff when something in it crashes.

        discord.py rides out closes and network errors itself, but an exception from parsing a
        payload (a server that speaks Discord imperfectly) ends its loop, and with it the bot.
        """
        delay = self.crash_backoff_s
        while not self.is_closed():
            started = time.monotonic()
            try:
                await super().connect(reconnect=reconnect)
                return
            except discord.DiscordException:
                raise  # closes, refused intents and bad tokens are discord.py's to handle
            except Exception:
                if self.is_closed():
                    return
                if time.monotonic() - started > 60:
                    delay = self.crash_backoff_s  # it ran well for a while: start the backoff again
                log.exception("the gateway connection crashed; reconnecting in %.1f s", delay)
                if self.ws is not None:
                    with contextlib.suppress(Exception):
                        await self.ws.close(code=4000)
                await asyncio.sleep(delay * random.uniform(1.0, 1.25))
                delay = min(CRASH_BACKOFF_MAX_S, delay * 2)

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: the Chat extension reads messages."""

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Answer every failed slash command with a safe message."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        text = report(cause, f"/{interaction.command.name if interaction.command else '?'}")
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not deliver an error message for interaction %s", interaction.id)
