"""The presses that draw again: a typed edit of the pressed image through the one image service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from agent.service import TurnResult
from bot.answering import answered, interaction_answer, opened
from bot.buttons.action import Post
from bot.language import interaction_voice
from bot.policy import here, missing_permissions
from bot.turns import interaction_turn
from egaku.errors import report
from tools.service.requests import Edit, Upscale
from tools.stores.history import Generation

if TYPE_CHECKING:
    from bot.client import EgakuBot


async def redraw(
    interaction: discord.Interaction, generation: Generation, edit: Edit | Upscale, post: Post, where: str
) -> None:
    """Defer at once, then draw the edit (or the upscale) for the presser and post it."""
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    voice = interaction_voice(bot, interaction)
    problem = missing_permissions(interaction.app_permissions)
    if problem:
        await interaction.response.send_message(voice(problem), ephemeral=True)
        return
    deferred = await interaction.response.defer(thinking=True)
    answer = interaction_answer(interaction, deferred)
    await opened(bot, answer)  # from here the press is answered exactly once, after a restart if need be
    place = await here(bot, interaction.user.id, interaction.guild_id, interaction.channel)
    turn = interaction_turn(bot, interaction, place, generation.user_words, answer=answer)
    images = bot.services.images
    try:
        asked = images.upscale(turn.who, edit) if isinstance(edit, Upscale) else images.edit(turn.who, edit)
        result = TurnResult.direct(await asked)
    except Exception as exc:
        await interaction.followup.send(report(exc, where, voice), ephemeral=True)
        await answered(bot, answer)
        return
    await post(interaction, result, where)
