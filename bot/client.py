"""The discord.py bot: intents, allowed mentions, extensions and the command tree.

Extensions are loaded by name (`EXTENSIONS`), each through its own `setup(bot)`, as
python-discord's bot does: adding a command or a button is one new file and one line here,
and this module imports none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import JobRegistry
from bot.language import interaction_voice
from bot.posts import Post
from bot.seen import SeenOnce
from bot.services import BotServices
from bot.translator import CatalogTranslator
from egaku.config import DiscordSettings
from egaku.errors import report
from tools.service.requests import turn_key

log = logging.getLogger(__name__)

SYNC_FAILED = (
    "could not sync the slash commands; carrying on without them (mentions, replies and DMs still work). "
    "They will be synced at the next start."
)
CRASH_BACKOFF_MAX_S = 60.0
POSTING_GRACE_S = 10.0
# Every feature is an extension with its own `setup(bot)`; they load in this order.
EXTENSIONS = (
    "bot.exts.chat",
    "bot.exts.describe",
    "bot.exts.imagine",
    "bot.exts.settings",
    "bot.exts.teach",
    "bot.exts.blend",
    "bot.exts.buttons",
    "bot.exts.resume",
)


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
        # Answers being posted now, with their channels: a stop waits for them, so that a posted answer is also
        # marked answered, and a reply in their channel waits for their pictures to be linked (bot.answering).
        self.posting: dict[asyncio.Task[Any], Post] = {}

    async def setup_hook(self) -> None:
        """Load the extensions and, if configured, sync slash commands."""
        for name in EXTENSIONS:
            await self.load_extension(name)
        self.tree.error(self.on_app_command_error)
        # The commands' names, descriptions, options and choices are synced with their translations.
        await self.tree.set_translator(CatalogTranslator(self.services.catalogs))
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

    async def close(self) -> None:
        """Let answers being posted finish (and be marked in the journal) for up to POSTING_GRACE_S, then close."""
        posting = {task for task in self.posting if task is not asyncio.current_task()}
        if posting:
            await asyncio.wait(posting, timeout=POSTING_GRACE_S)
        await super().close()

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: the Chat extension reads messages."""

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Answer every failed slash command with a safe message."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        where = f"/{interaction.command.name if interaction.command else '?'}"
        text = report(cause, where, interaction_voice(self, interaction))
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not deliver an error message for interaction %s", interaction.id)
            return
        journal = self.services.images.journal
        if journal is not None:  # the asker was told: a restart must not answer this command again
            with contextlib.suppress(Exception):
                await journal.answered(turn_key("interaction", interaction.id))
