"""/imagine: draw from a description, with or without the prompt rewrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from agent.service import TurnResult
from bot.exts.buttons import send_result
from bot.results import channel_refusal, conversation_id, here, interaction_turn, missing_permissions, policy_for
from egaku.errors import TooManyCandidates
from tools.context import ImageOptions
from tools.service import Draw
from worker.protocol import MAX_BEST_OF, MAX_N, MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, MAX_SEED, STYLES

ONE_OR_THE_OTHER = "Choose `count` (several pictures) or `best_of` (the best of several), not both."
ASPECTS = {"1:1": "square", "3:2": "landscape", "16:9": "wide", "2:3": "portrait", "9:16": "tall"}

if TYPE_CHECKING:
    from bot.client import EgakuBot


class Imagine(commands.Cog):
    """The /imagine slash command."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Draw a picture from a description, in any language")
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
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget this channel's conversation memory; the image history is kept."""
        await self.bot.services.agent.reset(conversation_id(interaction.channel_id or 0))
        await interaction.response.send_message(
            "Done: I've forgotten our conversation here. Your images are still in my history.", ephemeral=True
        )


async def imagine_for(
    bot: EgakuBot, interaction: discord.Interaction, prompt: str, choices: ImageOptions, *, raw: bool | None = None
) -> None:
    """/imagine's work, also behind /describe's "Imagine this": checks, defer, draw, post."""
    # Only what can refuse is read before the defer: the server's policy, cached and shared
    # by a burst of commands. Discord forgets interactions after 3 s.
    policy = await policy_for(bot, interaction.guild_id)
    problem = missing_permissions(interaction.app_permissions) or channel_refusal(policy, interaction.channel_id or 0)
    if problem:
        await interaction.response.send_message(problem, ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    settings = await here(bot, interaction.user.id, interaction.guild_id, interaction.channel)
    known = bot.services.models
    if choices.model is not None and known and choices.model not in known:
        await interaction.followup.send(f"I don't know the model `{choices.model}`. Choose one of: {', '.join(known)}.")
        return
    try:
        bot.services.images.check_best_of(choices.best_of or 1)
    except TooManyCandidates as exc:
        await interaction.followup.send(exc.user_text)  # before any LLM or GPU work
        return
    if (choices.best_of or 1) > 1 and (choices.count or 1) > 1:
        await interaction.followup.send(ONE_OR_THE_OTHER)
        return
    turn = interaction_turn(bot, interaction, settings, prompt, chosen=choices, must_draw=True)
    if settings.prefs.raw if raw is None else raw:
        result = TurnResult.direct(await bot.services.images.draw(turn.requester(), Draw(prompt)))
    else:
        result = await bot.services.agent.respond(turn)
    await send_result(bot, interaction, result, "/imagine")


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Imagine(bot))
