"""The discord.py bot: intents, allowed mentions, extensions and the command tree."""

from __future__ import annotations

import logging
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
from tools.history import History
from tools.preferences import Preferences
from tools.service import ImageService
from tools.worker_client import WorkerClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotServices:
    """What the extensions need, injected once."""

    agent: Agent
    images: ImageService  # the image service the buttons and /imagine raw call (the agent's tools share it)
    history: History | None = None
    session: aiohttp.ClientSession | None = None  # the process's one session, for attachments
    upload_hosts: frozenset[str] = frozenset()  # hosts besides Discord's CDN that attachments may come from
    models: tuple[str, ...] = ()  # the worker presets users may pick
    worker: WorkerClient | None = None  # for cancelling jobs and /describe
    status_after_s: float = 2.0  # jobs shorter than this get no status message
    status_edit_s: float = 1.5  # at most one status edit per this long (Discord allows ~5 per 5 s)
    preferences: Preferences | None = None  # /settings


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

    async def setup_hook(self) -> None:
        """Load extensions and, if configured, sync slash commands."""
        from bot.exts.buttons import ResultButton
        from bot.exts.chat import Chat
        from bot.exts.describe import Describe, ImagineThis
        from bot.exts.imagine import Imagine
        from bot.exts.settings import Settings
        from bot.progress import CancelButton

        self.add_dynamic_items(ResultButton, CancelButton, ImagineThis)
        await self.add_cog(Chat(self))
        await self.add_cog(Describe(self))
        await self.add_cog(Imagine(self))
        await self.add_cog(Settings(self))
        self.tree.error(self.on_app_command_error)
        if self.settings.sync_commands:
            for guild_id in self.settings.sync_guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            if not self.settings.sync_guild_ids:
                await self.tree.sync()

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
