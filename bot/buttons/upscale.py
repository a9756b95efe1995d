"""🔍 Upscale 2× and 🔎 Upscale 4×: the worker's upscaler enlarges the picture, faithfully (nothing is redrawn).

Where the image service has no upscaler (`[worker] upscaler` unset, or OpenAI's Images API), a press
draws the creative upscale instead (twice the size: four times would pass every model's pixel cap),
and the labels posted under new pictures say so.
"""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post, Press
from bot.buttons.creative import creative_edit
from bot.buttons.redraw import redraw
from egaku.i18n import _
from tools.service.requests import Upscale
from tools.stores.history import Generation

LABEL_2X = _("Upscale 2×")
LABEL_4X = _("Upscale 4×")
FALLBACK_2X = _("Upscale 2× (creative: no upscaler)")
FALLBACK_4X = _("Upscale 4× → 2× (creative: no upscaler)")


def upscale(scale: int) -> Press:
    """The press of a plain upscale button: `scale` times by the upscaler, or the creative upscale without one."""

    async def press(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
        request = Upscale(generation.id, scale, fallback=creative_edit(generation))
        await redraw(interaction, generation, request, post, f"button upscale {scale}x")

    return press


UPSCALE_2X = ButtonAction(
    "upscale2", "🔍", LABEL_2X, upscale(2), owner_only=True, guarded=True, fallback_label=FALLBACK_2X
)
UPSCALE_4X = ButtonAction(
    "upscale4", "🔎", LABEL_4X, upscale(4), owner_only=True, guarded=True, fallback_label=FALLBACK_4X
)
