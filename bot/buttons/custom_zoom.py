"""🔧 Custom Zoom: a form for the zoom (1.0–2.0) and the prompt (prefilled), then the zoom out it describes."""

from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING

import discord
from discord import ui

from bot.buttons.action import ButtonAction, Post
from bot.buttons.redraw import redraw
from bot.language import interaction_voice
from bot.render import PROMPT, clip
from egaku.i18n import Voice, _
from tools.service.requests import Edit
from tools.stores.history import Generation
from worker.protocol import MAX_PROMPT_CHARS, MAX_ZOOM, MIN_ZOOM

if TYPE_CHECKING:
    from bot.client import EgakuBot

LABEL = _("Custom Zoom")
TITLE = _("Custom zoom")
ZOOM_LABEL = _("Zoom out ({low:.1f} to {high:.1f})", low=MIN_ZOOM, high=MAX_ZOOM)
DEFAULT_ZOOM = "1.5"
ZOOM_BOUNDS = _("Zoom out takes a number from {low:.1f} to {high:.1f}, such as 1.5.", low=MIN_ZOOM, high=MAX_ZOOM)


def read_zoom(text: str) -> float | None:
    """The zoom a person typed ("1.5", "1,5", "1.5x", "×2", a Japanese IME's "１．５"); None unless it is a number
    from 1.0 to 2.0."""
    cleaned = unicodedata.normalize("NFKC", text).strip().lower().replace(",", ".").strip("x× ")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) and MIN_ZOOM <= value <= MAX_ZOOM else None


class CustomZoomModal(ui.Modal):
    """The zoom and the picture's prompt, editable; submitting them draws the zoom out."""

    def __init__(self, generation: Generation, post: Post, voice: Voice) -> None:
        super().__init__(title=voice(TITLE), timeout=600)
        self.generation = generation
        self.post = post
        self.voice = voice
        self.zoom: ui.TextInput[CustomZoomModal] = ui.TextInput(
            label=voice(ZOOM_LABEL), default=DEFAULT_ZOOM, max_length=8
        )
        self.prompt: ui.TextInput[CustomZoomModal] = ui.TextInput(
            label=voice(PROMPT),
            style=discord.TextStyle.paragraph,
            default=clip(generation.prompt, MAX_PROMPT_CHARS),
            max_length=MAX_PROMPT_CHARS,
        )
        self.add_item(self.zoom)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Refuse a zoom out of bounds at once, politely; otherwise draw it."""
        zoom = read_zoom(self.zoom.value)
        if zoom is None:
            await interaction.response.send_message(self.voice(ZOOM_BOUNDS), ephemeral=True)
            return
        edit = Edit(self.generation.id, self.prompt.value or self.generation.prompt, zoom=zoom)
        await redraw(interaction, self.generation, edit, self.post, "button custom zoom")


async def custom_zoom(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Open the form, in the presser's language."""
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    await interaction.response.send_modal(CustomZoomModal(generation, post, interaction_voice(bot, interaction)))


CUSTOM_ZOOM = ButtonAction("zoom", "🔧", LABEL, custom_zoom, owner_only=True)
