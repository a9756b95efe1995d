"""/imagine: draw from a description, with or without the prompt rewrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from agent.service import TurnRequest
from bot.deliver import followup
from bot.render import compose
from egaku.errors import failure_notice
from worker.protocol import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.client import EgakuBot


class Imagine(commands.Cog):
    """The /imagine slash command."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Draw a picture from a description, in any language")
    @app_commands.describe(
        prompt="What to draw, in your own words",
        raw="Draw your words exactly as written, without the English rewrite",
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        raw: bool = False,
    ) -> None:
        """Defer at once, then draw and post a followup."""
        # Before any LLM or GPU work: Discord forgets interactions after 3 s.
        await interaction.response.defer(thinking=True)
        turn = TurnRequest(
            conversation_id=f"discord:{interaction.channel_id}",
            user_id=str(interaction.user.id),
            user_name=interaction.user.display_name,
            text=prompt,
            must_draw=True,
        )
        agent = self.bot.services.agent
        result = await (agent.draw_raw(turn) if raw else agent.respond(turn))
        notice = failure_notice(result.failures, "/imagine")
        await followup(interaction, compose(result.reply, result.images, notice))


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Imagine(bot))
