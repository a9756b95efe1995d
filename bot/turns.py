"""The one way a Discord event becomes an agent turn."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord

from agent.service import TurnRequest
from bot.policy import Here
from bot.progress import watch_for
from bot.reach import conversation_of
from tools.service.requests import AnswerTo, ImageOptions, JobWatch

if TYPE_CHECKING:
    from bot.client import EgakuBot


def turn_request(
    here: Here,
    user: discord.abc.User,
    *,
    conversation: str,
    channel_id: int | None,
    guild_id: int | None,
    source_id: int,
    text: str,
    watch: JobWatch | None,
    chosen: ImageOptions | None = None,
    must_draw: bool = False,
    reply_to: int | None = None,
    answer: AnswerTo | None = None,
) -> TurnRequest:
    """The one way every front end (chat, /imagine, buttons) turns a Discord event into a turn.

    `chosen` are the options the user picked for this request; their /settings defaults and the
    server's model fill in what they left out.
    """
    chosen = chosen or ImageOptions()
    options = replace(
        chosen,
        aspect=chosen.aspect or here.prefs.aspect,
        style=chosen.style or here.prefs.style,
        model=chosen.model or here.policy.model,
    )
    return TurnRequest.of(
        conversation_id=conversation,
        user_id=str(user.id),
        user_name=user.display_name,
        text=text,
        must_draw=must_draw,
        guild_id=str(guild_id) if guild_id else None,
        channel_id=str(channel_id),
        source_id=str(source_id),
        reply_to=str(reply_to) if reply_to else None,
        options=options,
        watch=watch,
        nsfw=here.nsfw,
        guild_cap=here.policy.max_jobs,
        best_of=here.policy.best_of,
        language=here.prefs.language,
        answer=answer,  # where the answer goes: its jobs are journaled and survive a restart
    )


def interaction_turn(
    bot: EgakuBot, interaction: discord.Interaction, here: Here, text: str, **more: Any
) -> TurnRequest:
    """The turn for a slash command, a button or a modal, with a status message (in its channel, or a followup)."""
    return turn_request(
        here,
        interaction.user,
        conversation=conversation_of(bot, interaction),
        channel_id=interaction.channel_id,
        guild_id=interaction.guild_id,
        source_id=interaction.id,
        text=text,
        watch=watch_for(bot, interaction),
        **more,
    )
