"""🔹 Vary (subtle) and 🔷 Vary (strong): the picture kept, varied a little or a lot."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post
from bot.buttons.redraw import redraw
from egaku.i18n import _
from tools.service.requests import Edit
from tools.stores.history import Generation


async def subtle(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """A little variation of the picture."""
    await redraw(interaction, generation, Edit(generation.id, generation.prompt, "subtle"), post, "button subtle")


async def strong(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """A strong variation of the picture."""
    await redraw(interaction, generation, Edit(generation.id, generation.prompt, "strong"), post, "button strong")


SUBTLE = ButtonAction("subtle", "🔹", _("Vary (subtle)"), subtle, owner_only=True, guarded=True)
STRONG = ButtonAction("strong", "🔷", _("Vary (strong)"), strong, owner_only=True, guarded=True)
