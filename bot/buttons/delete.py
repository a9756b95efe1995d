"""🗑️ Delete: the result message goes, for its owner or a moderator."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post
from tools.stores.history import Generation

NOT_ALLOWED = "Only the person who asked for this image, or a moderator, can delete it."


async def delete(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Delete the result message: its owner or a moderator only."""
    owner = str(interaction.user.id) == generation.user_id
    # interaction.permissions: the presser's resolved permissions in this channel.
    if not owner and not interaction.permissions.manage_messages:
        await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
        return
    await interaction.response.defer(ephemeral=True, thinking=False)
    if interaction.message is not None:
        await interaction.message.delete()


DELETE = ButtonAction("delete", "🗑️", "Delete", delete, danger=True)
