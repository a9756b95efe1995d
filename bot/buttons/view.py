"""The buttons under a result: one restart-safe `ResultButton` that dispatches to the registered actions.

Each button is a DynamicItem whose custom_id carries the action and the image's history id
("egaku:reroll:k3m9"), so buttons keep working after a restart: the state lives in the id and
the history, not in memory. A custom_id that does not match the template is ignored by
discord.py; one that matches but names no image or no action, or a press by someone else on an
owner's button, gets a polite ephemeral refusal.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import ui

from agent.service import TurnResult
from bot.answering import follow_up_once, interaction_answer
from bot.buttons.registry import ACTIONS, GRID_SHARED, PER_PICTURE, SINGLE_ROWS
from bot.language import interaction_voice
from bot.policy import here
from bot.reach import conversation_of
from bot.render import Outgoing, compose, with_retry
from egaku.errors import failure_notice
from egaku.i18n import ENGLISH_VOICE, Voice, _
from tools.pictures import RenderedImage
from tools.stores.history import Generation, Viewer

if TYPE_CHECKING:
    from bot.client import EgakuBot

NOT_YOURS = _("Only the person who asked for this image can change it. Ask for your own with `/imagine`!")
GONE = _("I can't find that image in my history any more.")
BUSY = _("I'm already working on that one.")


def result_view(images: list[RenderedImage], voice: Voice, *, upscaler: bool) -> ui.View | None:
    """The buttons for a result message.

    One image: reroll, vary, edit; the upscales; the zooms; the pans; show prompt, delete
    (`SINGLE_ROWS`). Several (up to 4): per-image rows U1..Un (upscale) and V1..Vn (vary
    strongly), as Midjourney has them, then reroll, edit, show prompt and delete for the first
    image. Without an `upscaler`, the plain upscale buttons' labels say that they fall back.
    """
    ids = [image.id for image in images if image.id]
    if not ids:
        return None
    view = ui.View(timeout=None)
    if len(ids) == 1:
        # Best-of-N: the candidates the posted picture beat stay behind one more button.
        rows = [*SINGLE_ROWS[:-1], (*SINGLE_ROWS[-1], *(("candidates",) if images[0].candidates else ()))]
        for row, names in enumerate(rows):
            for name in names:
                view.add_item(ResultButton(name, ids[0], row=row, voice=voice, upscaler=upscaler))
        return view
    for row, (each, letter) in enumerate(PER_PICTURE):
        for number, generation_id in enumerate(ids[:5], start=1):
            view.add_item(ResultButton(each, generation_id, row=row, label=f"{letter}{number}"))
    for name in GRID_SHARED:
        view.add_item(ResultButton(name, ids[0], row=len(PER_PICTURE), voice=voice))
    return view


async def with_buttons(
    bot: EgakuBot, outgoing: list[Outgoing], images: list[RenderedImage], voice: Voice
) -> list[Outgoing]:
    """Attach the buttons to the message that carries the images (asking, for one image, about the upscaler)."""
    if outgoing:
        alone = sum(1 for image in images if image.id) == 1  # only one picture's buttons name the upscaler
        upscaler = alone and await bot.services.images.upscaler() is not None
        outgoing[-1].view = result_view(images, voice, upscaler=upscaler)
    return outgoing


async def result_messages(bot: EgakuBot, result: TurnResult, notice: str | None, voice: Voice) -> list[Outgoing]:
    """A result's messages in `voice`: its words (`TurnResult.said`), pictures and notice, with the pictures'
    buttons or else a Retry button."""
    outgoing = await with_buttons(bot, compose(result.said(voice), result.images, notice, voice), result.images, voice)
    return with_retry(outgoing, result.retries, voice)


async def send_result(interaction: discord.Interaction, result: TurnResult, where: str) -> None:
    """Post a result as the interaction's answer, with its buttons (or Retry), in the asker's language; remember
    which message shows it."""
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    voice = interaction_voice(bot, interaction)
    notice = failure_notice(result.failures, where, voice)
    outgoing = await result_messages(bot, result, notice, voice)
    await follow_up_once(bot, interaction, outgoing, interaction_answer(interaction), where, shown=result)


class ResultButton(ui.DynamicItem[ui.Button[Any]], template=r"egaku:(?P<action>[a-z0-9]+):(?P<gen>[a-z2-9]{4,8})"):
    """One restart-safe button."""

    def __init__(
        self,
        action: str,
        generation_id: str,
        row: int | None = None,
        label: str | None = None,
        voice: Voice = ENGLISH_VOICE,
        upscaler: bool = True,
    ) -> None:
        known = ACTIONS.get(action)
        emoji: str | None = known.emoji if known else "❔"
        if label is not None:
            emoji = None  # "U2", "V3": short per-image labels, as on Midjourney's grids
        style = discord.ButtonStyle.danger if known and known.danger else discord.ButtonStyle.secondary
        custom_id = f"egaku:{action}:{generation_id}"
        if label is None:
            shown = known.label_for(upscaler) if known else None
            # No label is an emoji-only button (the pans); an unknown action shows its name.
            label = voice(shown) if shown else (None if known else action)
        super().__init__(ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id, row=row))
        self.action = action
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        """Rebuild the button from its custom_id (after a restart too)."""
        return cls(match["action"], match["gen"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Check the image and the presser first; then do the action."""
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        voice = interaction_voice(bot, interaction)
        history = bot.services.history
        action = ACTIONS.get(self.action)
        generation = await history.get(self.generation_id) if history else None
        if action is None or generation is None or not await self.may_see(interaction, generation):
            # Never says whether it exists elsewhere.
            await interaction.response.send_message(voice(GONE), ephemeral=True)
            return
        if action.owner_only and str(interaction.user.id) != generation.user_id:
            await interaction.response.send_message(voice(NOT_YOURS), ephemeral=True)
            return
        if not action.guarded:
            await action.press(interaction, generation, send_result)
            return
        with bot.seen.held(f"press:{interaction.user.id}:{action.name}:{generation.id}") as alone:
            if not alone:
                await interaction.response.send_message(voice(BUSY), ephemeral=True)
                return
            await action.press(interaction, generation, send_result)

    @staticmethod
    async def may_see(interaction: discord.Interaction, generation: Generation) -> bool:
        """The reference rule for a press: a custom_id can name any picture, so it is checked like an id."""
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        place = await here(bot, interaction.user.id, interaction.guild_id, interaction.channel)
        viewer = Viewer(str(interaction.user.id), conversation_of(bot, interaction), place.nsfw)
        return viewer.may_see(generation)
