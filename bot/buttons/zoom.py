"""🔭 Zoom Out 1.5× and 2×: the picture, every pixel kept, centred on a larger canvas whose border is painted."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post, Press
from bot.buttons.redraw import redraw
from egaku.i18n import _
from tools.service.requests import Edit
from tools.stores.history import Generation

LABEL_15 = _("Zoom Out 1.5×")
LABEL_2 = _("Zoom Out 2×")


def zoom_out(factor: float) -> Press:
    """The press of a zoom button: the picture's own prompt paints the new border."""

    async def press(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
        edit = Edit(generation.id, generation.prompt, zoom=factor)
        await redraw(interaction, generation, edit, post, f"button zoom {factor}x")

    return press


ZOOM_15 = ButtonAction("zoom15", "🔭", LABEL_15, zoom_out(1.5), owner_only=True, guarded=True)
ZOOM_2 = ButtonAction("zoom2", "🔭", LABEL_2, zoom_out(2.0), owner_only=True, guarded=True)
