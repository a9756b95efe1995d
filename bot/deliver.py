"""Sending composed messages to a channel, a reply, or an interaction followup."""

from __future__ import annotations

from typing import Any

import discord

from bot.render import Outgoing


def send_kwargs(out: Outgoing) -> dict[str, Any]:
    """discord.py keyword arguments for one outgoing message (empty parts left out)."""
    kwargs: dict[str, Any] = {}
    if out.content:
        kwargs["content"] = out.content
    if out.embeds:
        kwargs["embeds"] = out.embeds
    if out.files:
        kwargs["files"] = out.files
    if out.view is not None:
        kwargs["view"] = out.view
    return kwargs


def _sent(outgoing: list[Outgoing], messages: list[discord.Message]) -> list[discord.Message]:
    # Buttons keep their state in their custom_id; dropping the live view means every press,
    # before or after a restart, takes the same DynamicItem path.
    for out in outgoing:
        if out.view is not None:
            out.view.stop()
    return messages


async def reply_to(message: discord.Message, outgoing: list[Outgoing]) -> list[discord.Message]:
    """Post as replies to the user's message, without pinging them."""
    return _sent(outgoing, [await message.reply(**send_kwargs(out), mention_author=False) for out in outgoing])


async def followup(interaction: discord.Interaction, outgoing: list[Outgoing]) -> list[discord.Message]:
    """Post as followups of a deferred interaction."""
    return _sent(outgoing, [await interaction.followup.send(**send_kwargs(out), wait=True) for out in outgoing])
