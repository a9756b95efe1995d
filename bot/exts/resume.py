"""Resume: once connected after a start, every request left unanswered before it goes on (bot.resume)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.resume import resume_all
from tools.stores.journal import OpenTurn

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)


class Resume(commands.Cog):
    """Takes up the journal's unanswered requests once the bot is connected."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        """Read what was left before any event arrives; take it up in the background while new requests go on."""
        images = self.bot.services.images  # None where only the commands are built (`egaku doctor`)
        journal = images.journal if images is not None else None
        # Read now, before the gateway connects: what this process opens itself is never taken up twice.
        left = await journal.unfinished() if journal is not None else []
        self._task = asyncio.create_task(self._resume(left), name="resume")

    async def cog_unload(self) -> None:
        """Stop resuming (the bot is closing); what is left stays in the journal for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _resume(self, left: list[OpenTurn]) -> None:
        await self.bot.wait_until_ready()
        try:
            await resume_all(self.bot, left)
        except Exception:
            log.exception("resuming the journal's requests failed; they stay for the next start")


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Resume(bot))
