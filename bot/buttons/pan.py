"""⬅️ ➡️ ⬆️ ⬇️ Pan: the view slides a third of the picture that way; the new strip is painted, the rest kept."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post, Press
from bot.buttons.redraw import redraw
from tools.service.requests import Edit
from tools.stores.history import Generation
from worker.protocol import Pan


def pan(direction: Pan) -> Press:
    """The press of a pan button: the picture's own prompt paints the new strip."""

    async def press(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
        edit = Edit(generation.id, generation.prompt, pan=direction)
        await redraw(interaction, generation, edit, post, f"button pan {direction}")

    return press


# Emoji-only buttons (no label), as the four arrows read at a glance.
PAN_LEFT = ButtonAction("panleft", "⬅️", None, pan("left"), owner_only=True, guarded=True)
PAN_RIGHT = ButtonAction("panright", "➡️", None, pan("right"), owner_only=True, guarded=True)
PAN_UP = ButtonAction("panup", "⬆️", None, pan("up"), owner_only=True, guarded=True)
PAN_DOWN = ButtonAction("pandown", "⬇️", None, pan("down"), owner_only=True, guarded=True)
