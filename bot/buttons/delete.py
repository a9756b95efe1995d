"""🗑️ Delete: the result message goes, for its owner or a moderator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.buttons.action import ButtonAction, Post
from bot.language import interaction_voice
from bot.reach import posts_in_channel
from egaku.i18n import _
from tools.stores.history import Generation

if TYPE_CHECKING:
    from bot.client import EgakuBot

NOT_ALLOWED = _("Only the person who asked for this image, or a moderator, can delete it.")


async def delete(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Delete the result message: its owner or a moderator only."""
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    owner = str(interaction.user.id) == generation.user_id
    # interaction.permissions: the presser's resolved permissions in this channel.
    if not owner and not interaction.permissions.manage_messages:
        await interaction.response.send_message(interaction_voice(bot, interaction)(NOT_ALLOWED), ephemeral=True)
        return
    if not posts_in_channel(bot, interaction):
        # No channel access: the message the button is on is the press's own to delete, through its token.
        await interaction.response.defer()
        await interaction.delete_original_response()
        return
    await interaction.response.defer(ephemeral=True, thinking=False)
    if interaction.message is not None:
        await interaction.message.delete()


DELETE = ButtonAction("delete", "🗑️", _("Delete"), delete, danger=True)
