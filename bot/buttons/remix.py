"""✏️ Edit (remix): the prompt, prefilled in a form, then a strong variation with the new words."""

from __future__ import annotations

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
from worker.protocol import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.client import EgakuBot


class RemixModal(ui.Modal):
    """The image's prompt, editable; submitting it draws the remix."""

    def __init__(self, generation: Generation, post: Post, voice: Voice) -> None:
        super().__init__(title=voice(_("Edit the prompt")), timeout=600)
        self.generation = generation
        self.post = post
        self.prompt: ui.TextInput[RemixModal] = ui.TextInput(
            label=voice(PROMPT),
            style=discord.TextStyle.paragraph,
            default=clip(generation.prompt, MAX_PROMPT_CHARS),
            max_length=MAX_PROMPT_CHARS,
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Draw the remix."""
        edit = Edit(self.generation.id, self.prompt.value or self.generation.prompt, "strong")
        await redraw(interaction, self.generation, edit, self.post, "button edit")


async def remix(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Open the form."""
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    await interaction.response.send_modal(RemixModal(generation, post, interaction_voice(bot, interaction)))


REMIX = ButtonAction("edit", "✏️", _("Edit"), remix, owner_only=True)
