"""🎨 Upscale (creative): the picture redrawn at twice the size, its detail kept (img2img at low strength).

Its action keeps the name "upscale", so the buttons of messages posted before the upscaler still work.
"""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post
from bot.buttons.redraw import redraw
from egaku.i18n import _
from tools.service.requests import Edit
from tools.stores.history import Generation

LABEL = _("Upscale (creative)")


def creative_edit(generation: Generation) -> Edit:
    """The creative upscale of a picture: a strong variation at twice its size, at the upscale's low strength."""
    return Edit(generation.id, generation.prompt, "strong", scale=2.0)


async def creative(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Twice the size, redrawn."""
    await redraw(interaction, generation, creative_edit(generation), post, "button upscale")


CREATIVE = ButtonAction("upscale", "🎨", LABEL, creative, owner_only=True, guarded=True)
