"""Where the bot may act for an interaction: in the channel, or only through the interaction itself.

A command of the app installed to a user's account runs wherever that user is: in a server the
bot never joined, in a DM between users or a group DM. There the bot is no member: it reads
and posts nothing in the channel, and answers through the interaction only (its response and
followups). Its conversations there are kept per user, since the bot sees nothing else of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from bot.client import EgakuBot


def posts_in_channel(bot: EgakuBot, interaction: discord.Interaction) -> bool:
    """Whether the bot may post in the interaction's channel: a server it is in, or its own DM with the user."""
    if interaction.context.private_channel:
        return False  # a DM between users or a group DM: only the interaction reaches it
    if interaction.guild_id is not None:
        return bot.get_guild(interaction.guild_id) is not None
    return True


def conversation_id(channel_id: int) -> str:
    """A channel, a thread or a DM is one conversation."""
    return f"discord:{channel_id}"


def conversation_of(bot: EgakuBot, interaction: discord.Interaction) -> str:
    """The conversation an interaction belongs to: its channel's, or the user's own where the bot is no member."""
    if posts_in_channel(bot, interaction):
        return conversation_id(interaction.channel_id or 0)
    return f"discord:user:{interaction.user.id}"
