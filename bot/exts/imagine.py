"""/imagine: draw from a description, with or without the prompt rewrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from agent.service import TurnRequest
from bot.deliver import followup
from bot.exts.chat import conversation_id, remember_shown
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
            conversation_id=conversation_id(interaction.channel_id or 0),
            user_id=str(interaction.user.id),
            user_name=interaction.user.display_name,
            text=prompt,
            must_draw=True,
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            channel_id=str(interaction.channel_id),
        )
        agent = self.bot.services.agent
        result = await (agent.draw_raw(turn) if raw else agent.respond(turn))
        notice = failure_notice(result.failures, "/imagine")
        sent = await followup(interaction, compose(result.reply, result.images, notice))
        await remember_shown(self.bot, result, sent)

    @app_commands.command(name="reset", description="Forget our conversation here (your images stay)")
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget this channel's conversation memory; the image history is kept."""
        await self.bot.services.agent.reset(conversation_id(interaction.channel_id or 0))
        await interaction.response.send_message(
            "Done: I've forgotten our conversation here. Your images are still in my history.", ephemeral=True
        )


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Imagine(bot))
