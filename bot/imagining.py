"""/imagine's work, shared by the command and /describe's "Imagine this": checks, defer, draw, post."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from agent.service import TurnResult
from bot.answering import interaction_answer, opened
from bot.buttons.view import send_result
from bot.language import interaction_voice
from bot.policy import command_refusal, here
from bot.turns import interaction_turn
from egaku.errors import TooManyCandidates
from egaku.i18n import _
from tools.service.requests import Draw, ImageOptions

if TYPE_CHECKING:
    from bot.client import EgakuBot

ONE_OR_THE_OTHER = _("Choose `count` (several pictures) or `best_of` (the best of several), not both.")


async def imagine_for(
    bot: EgakuBot, interaction: discord.Interaction, prompt: str, choices: ImageOptions, *, raw: bool | None = None
) -> None:
    """/imagine's work, also behind /describe's "Imagine this": checks, defer, draw, post."""
    # Only what can refuse is read before the defer: the server's policy, cached and shared
    # by a burst of commands. Discord forgets interactions after 3 s.
    voice = interaction_voice(bot, interaction)
    problem = await command_refusal(bot, interaction)
    if problem:
        await interaction.response.send_message(voice(problem), ephemeral=True)
        return
    deferred = await interaction.response.defer(thinking=True)
    place = await here(bot, interaction.user.id, interaction.guild_id, interaction.channel)
    known = bot.services.models
    if choices.model is not None and known and choices.model not in known:
        unknown = _("I don't know the model `{model}`. Choose one of: {models}.", model=choices.model,
                    models=", ".join(known))  # fmt: skip
        await interaction.followup.send(voice(unknown))
        return
    try:
        bot.services.images.check_best_of(choices.best_of or 1)
    except TooManyCandidates as exc:
        await interaction.followup.send(voice(exc.text))  # before any LLM or GPU work
        return
    if (choices.best_of or 1) > 1 and (choices.count or 1) > 1:
        await interaction.followup.send(voice(ONE_OR_THE_OTHER))
        return
    answer = interaction_answer(interaction, deferred)
    turn = interaction_turn(bot, interaction, place, prompt, chosen=choices, must_draw=True, answer=answer)
    drawn_raw = place.prefs.raw if raw is None else raw
    # From here the command is answered exactly once; a turn for the model can be run again after a restart.
    await opened(bot, answer, ask=None if drawn_raw else turn)
    if drawn_raw:
        result = TurnResult.direct(await bot.services.images.draw(turn.who, Draw(prompt)))
    else:
        result = await bot.services.agent.respond(turn)
    await send_result(interaction, result, "/imagine")
