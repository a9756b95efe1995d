"""/imagine: draw from a description, with or without the prompt rewrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.choices import ASPECTS
from bot.imagining import imagine_for
from bot.language import interaction_voice
from bot.reach import conversation_of
from egaku.i18n import _
from tools.service.requests import ImageOptions
from worker.protocol import MAX_BEST_OF, MAX_N, MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, MAX_SEED, STYLES

if TYPE_CHECKING:
    from bot.client import EgakuBot


class Imagine(commands.Cog):
    """The /imagine slash command."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Draw a picture from a description, in any language")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        prompt="What to draw, in your own words",
        negative="Things to keep out of the picture",
        aspect="Shape of the picture",
        seed="A number that makes the result repeatable",
        style="A style preset",
        count="How many pictures (1-4)",
        model="Which model to draw with",
        raw="Draw your words exactly as written, without the English rewrite",
        best_of="Draw this many candidates and post the one that matches best",
    )
    @app_commands.choices(
        aspect=[app_commands.Choice(name=f"{label} ({value})", value=value) for value, label in ASPECTS.items()],
        style=[app_commands.Choice(name=name, value=name) for name in STYLES],
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        negative: app_commands.Range[str, 1, MAX_NEGATIVE_CHARS] | None = None,
        aspect: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        style: str | None = None,
        count: app_commands.Range[int, 1, MAX_N] | None = None,
        model: str | None = None,
        raw: bool | None = None,
        best_of: app_commands.Range[int, 1, MAX_BEST_OF] | None = None,
    ) -> None:
        """Defer at once, then draw and post a followup."""
        if not self.bot.seen.first_time(f"interaction:{interaction.id}"):
            return  # a replay: the first delivery is already being answered
        choices = ImageOptions(
            negative_prompt=negative, aspect=aspect, seed=seed, style=style, count=count, model=model, best_of=best_of
        )
        await imagine_for(self.bot, interaction, prompt, choices, raw=raw)

    @imagine.autocomplete("model")
    async def model_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The configured model presets that match what the user typed."""
        models = [m for m in self.bot.services.models if current.lower() in m.lower()]
        return [app_commands.Choice(name=m, value=m) for m in models[:25]]

    @app_commands.command(name="reset", description="Forget our conversation here (your images stay)")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget this conversation's memory (the channel's, or the user's own); the image history is kept."""
        await self.bot.services.agent.reset(conversation_of(self.bot, interaction))
        done = _("Done: I've forgotten our conversation here. Your images are still in my history.")
        await interaction.response.send_message(interaction_voice(self.bot, interaction)(done), ephemeral=True)


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Imagine(bot))
