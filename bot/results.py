"""Where a turn's result meets Discord: conversation ids, and which message shows which image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from agent.service import TurnResult

if TYPE_CHECKING:
    from bot.client import EgakuBot


def conversation_id(channel_id: int) -> str:
    """A channel, a thread or a DM is one conversation."""
    return f"discord:{channel_id}"


async def remember_shown(bot: EgakuBot, result: TurnResult, sent: list[discord.Message]) -> None:
    """Link the turn's images to the message that shows them, for reply-to-edit."""
    history = bot.services.history
    ids = [image.id for image in result.images if image.id]
    if history is not None and ids and sent:
        await history.attach_message(ids, str(sent[-1].id))
