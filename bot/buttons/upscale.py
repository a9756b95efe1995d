"""🔍 Upscale 2×: the picture redrawn at twice the size, its detail kept (img2img at low strength)."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post
from bot.buttons.redraw import redraw
from egaku.i18n import _
from tools.service.requests import Edit
from tools.stores.history import Generation


async def upscale(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Twice the size."""
    edit = Edit(generation.id, generation.prompt, "strong", scale=2.0)
    await redraw(interaction, generation, edit, post, "button upscale")


UPSCALE = ButtonAction("upscale", "🔍", _("Upscale 2×"), upscale, owner_only=True, guarded=True)
