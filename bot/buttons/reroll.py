"""🎲 Reroll: the same description with a new seed."""

from __future__ import annotations

import secrets

import discord

from bot.buttons.action import ButtonAction, Post
from bot.buttons.redraw import redraw
from egaku.i18n import _
from tools.service.requests import Edit
from tools.stores.history import Generation
from worker.protocol import MAX_SEED


async def reroll(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Draw the image's prompt again from a fresh seed."""
    edit = Edit(generation.id, generation.prompt, "regenerate", seed=secrets.randbelow(MAX_SEED + 1))
    await redraw(interaction, generation, edit, post, "button reroll")


REROLL = ButtonAction("reroll", "🎲", _("Reroll"), reroll, owner_only=True, guarded=True)
