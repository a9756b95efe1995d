"""Buttons under every result: reroll, vary, upscale, edit (remix), show prompt, delete, and after a
best-of-N render, the other candidates with their scores.

Each button is a DynamicItem whose custom_id carries the action and the image's
history id ("egaku:reroll:k3m9"), so buttons keep working after a restart: the
state lives in the id and the history, not in memory. A custom_id that does not
match the template is ignored by discord.py; one that matches but names no
image, or a press by someone else, gets a polite ephemeral refusal.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import ui

from agent.service import TurnResult
from bot.deliver import followup
from bot.render import Outgoing, clip, compose
from bot.results import here, interaction_turn, missing_permissions, remember_shown
from egaku.errors import failure_notice, report
from tools.history import Generation
from tools.service import Edit
from tools.types import RenderedImage
from worker.protocol import MAX_PROMPT_CHARS, MAX_SEED

if TYPE_CHECKING:
    from bot.client import EgakuBot

Action = Literal["reroll", "subtle", "strong", "upscale", "edit", "prompt", "delete", "candidates"]
LABELS: dict[str, tuple[str, str]] = {
    "reroll": ("🎲", "Reroll"),
    "subtle": ("🔹", "Vary (subtle)"),
    "strong": ("🔷", "Vary (strong)"),
    "upscale": ("🔍", "Upscale 2×"),
    "edit": ("✏️", "Edit"),
    "prompt": ("📝", "Show prompt"),
    "delete": ("🗑️", "Delete"),
    "candidates": ("🏅", "Show the other candidates"),
}
OWNER_ONLY = {"reroll", "subtle", "strong", "upscale", "edit"}
NOT_YOURS = "Only the person who asked for this image can change it. Ask for your own with `/imagine`!"
GONE = "I can't find that image in my history any more."
NO_CANDIDATES = "This picture was drawn alone: there are no other candidates."


def result_view(images: list[RenderedImage]) -> ui.View | None:
    """The buttons for a result message.

    One image: reroll, vary, upscale, edit, show prompt, delete. Several (up to 4): per-image
    rows U1..Un (upscale) and V1..Vn (vary strongly), as Midjourney has them, then reroll, edit,
    show prompt and delete for the first image.
    """
    ids = [image.id for image in images if image.id]
    if not ids:
        return None
    view = ui.View(timeout=None)
    if len(ids) == 1:
        # Best-of-N: the candidates the posted picture beat stay behind one more button.
        extra: tuple[Action, ...] = ("candidates",) if images[0].candidates else ()
        rows: tuple[tuple[Action, ...], ...] = (
            ("reroll", "subtle", "strong", "upscale", "edit"),
            ("prompt", "delete", *extra),
        )
        for row, actions in enumerate(rows):
            for action in actions:
                view.add_item(ResultButton(action, ids[0], row=row))
        return view
    per_image: tuple[tuple[Action, str], ...] = (("upscale", "U"), ("strong", "V"))
    for row, (each, letter) in enumerate(per_image):
        for number, generation_id in enumerate(ids[:5], start=1):
            view.add_item(ResultButton(each, generation_id, row=row, label=f"{letter}{number}"))
    shared: tuple[Action, ...] = ("reroll", "edit", "prompt", "delete")
    for action in shared:
        view.add_item(ResultButton(action, ids[0], row=2))
    return view


def with_buttons(outgoing: list[Outgoing], images: list[RenderedImage]) -> list[Outgoing]:
    """Attach the buttons to the message that carries the images."""
    if outgoing:
        outgoing[-1].view = result_view(images)
    return outgoing


def describe(generation: Generation) -> str:
    """The ephemeral "show prompt" text: both prompts and the parameters."""
    lines = [
        f"**You said:** {clip(generation.user_words, 900)}",
        f"**Prompt:** {clip(generation.prompt, 1500)}",
    ]
    if generation.negative_prompt:
        lines.append(f"**Negative:** {clip(generation.negative_prompt, 500)}")
    lines.append(
        f"`id {generation.id}` · seed {generation.seed} · {generation.width}×{generation.height} · "
        f"{generation.steps} steps · {generation.model or 'upload'} · {generation.kind}"
        + (f" of `{generation.parent_id}`" if generation.parent_id else "")
    )
    return "\n".join(lines)


class ResultButton(ui.DynamicItem[ui.Button[Any]], template=r"egaku:(?P<action>[a-z]+):(?P<gen>[a-z2-9]{4,8})"):
    """One restart-safe button."""

    def __init__(self, action: Action, generation_id: str, row: int | None = None, label: str | None = None) -> None:
        emoji: str | None
        emoji, default = LABELS.get(action, ("❔", action))
        if label is not None:
            emoji = None  # "U2", "V3": short per-image labels, as on Midjourney's grids
        style = discord.ButtonStyle.danger if action == "delete" else discord.ButtonStyle.secondary
        custom_id = f"egaku:{action}:{generation_id}"
        super().__init__(ui.Button(label=label or default, emoji=emoji, style=style, custom_id=custom_id, row=row))
        self.action = action
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        """Rebuild the button from its custom_id (after a restart too)."""
        return cls(match["action"], match["gen"])  # type: ignore[arg-type]

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Check the image and the presser first; then do the action."""
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        history = bot.services.history
        generation = await history.get(self.generation_id) if history else None
        if self.action not in LABELS or generation is None:
            await interaction.response.send_message(GONE, ephemeral=True)
            return
        owner = str(interaction.user.id) == generation.user_id
        if self.action in OWNER_ONLY and not owner:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        if self.action == "prompt":
            await interaction.response.send_message(describe(generation), ephemeral=True)
        elif self.action == "candidates":
            await show_candidates(interaction, generation)
        elif self.action == "delete":
            await self.delete(interaction, owner)
        elif self.action == "edit":
            await interaction.response.send_modal(RemixModal(generation))
        else:
            key = f"press:{interaction.user.id}:{self.action}:{generation.id}"
            if not bot.seen.first_time(key):
                await interaction.response.send_message("I'm already working on that one.", ephemeral=True)
                return
            try:
                await run_action(interaction, generation, self.action)
            finally:
                bot.seen.forget(key)

    async def delete(self, interaction: discord.Interaction, owner: bool) -> None:
        """Delete the result message: its owner or a moderator only."""
        # interaction.permissions: the presser's resolved permissions in this channel.
        if not owner and not interaction.permissions.manage_messages:
            await interaction.response.send_message(
                "Only the person who asked for this image, or a moderator, can delete it.", ephemeral=True
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=False)
        if interaction.message is not None:
            await interaction.message.delete()


async def show_candidates(interaction: discord.Interaction, generation: Generation) -> None:
    """The best-of candidates a posted picture was chosen over, each with its score, for the presser only."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    history = bot.services.history
    assert history is not None  # the button found its picture there
    losers = await history.candidates(generation.id)
    if not losers:
        await interaction.followup.send(NO_CANDIDATES, ephemeral=True)
        return
    pngs = await asyncio.to_thread(lambda: [history.png(g) for g in losers])  # disk reads: not on the loop
    images = [shown(g, png) for g, png in zip(losers, pngs, strict=True)]
    text = (
        f"The posted picture (`{generation.id}`) scored **{generation.score:.2f}**, the best of {len(losers) + 1}. "
        "The others, best first:\n" + "\n".join(f"`{g.id}` · seed {g.seed} · score **{g.score:.2f}**" for g in losers)
    )
    outgoing = compose(text, images)
    for out in outgoing:
        out.ephemeral = True
    await followup(interaction, outgoing, "button candidates")


def shown(generation: Generation, png: bytes) -> RenderedImage:
    """A history entry as an image to post again."""
    return RenderedImage(
        png=png, prompt=generation.prompt, negative_prompt=generation.negative_prompt, seed=generation.seed,
        width=generation.width, height=generation.height, steps=generation.steps, guidance=0.0,
        model=generation.model, user_words=generation.user_words, id=generation.id, kind=generation.kind,
        score=generation.score,
    )  # fmt: skip


class RemixModal(ui.Modal, title="Edit the prompt"):
    """Remix: the prompt, prefilled, then a strong variation of the image with the new words."""

    def __init__(self, generation: Generation) -> None:
        super().__init__(timeout=600)
        self.generation = generation
        self.prompt: ui.TextInput[RemixModal] = ui.TextInput(
            label="Prompt",
            style=discord.TextStyle.paragraph,
            default=clip(generation.prompt, MAX_PROMPT_CHARS),
            max_length=MAX_PROMPT_CHARS,
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Draw the remix."""
        await run_action(interaction, self.generation, "edit", prompt=self.prompt.value)


async def run_action(interaction: discord.Interaction, generation: Generation, action: str, prompt: str = "") -> None:
    """Defer at once, then reroll / vary / upscale / remix through the agent's own edit path."""
    problem = missing_permissions(interaction.app_permissions)
    if problem:
        await interaction.response.send_message(problem, ephemeral=True)
        return
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    await interaction.response.defer(thinking=True)
    settings = await here(bot, interaction.user.id, interaction.guild_id, interaction.channel)
    turn = interaction_turn(bot, interaction, settings, generation.user_words)
    prompt = prompt or generation.prompt
    requests: dict[str, Edit] = {
        "reroll": Edit(generation.id, prompt, "regenerate", seed=secrets.randbelow(MAX_SEED + 1)),
        "upscale": Edit(generation.id, prompt, "strong", scale=2.0),
        "edit": Edit(generation.id, prompt, "strong"),
        "subtle": Edit(generation.id, prompt, "subtle"),
        "strong": Edit(generation.id, prompt, "strong"),
    }
    try:
        result = TurnResult.direct(await bot.services.images.edit(turn.requester(), requests[action]))
    except Exception as exc:
        await interaction.followup.send(report(exc, f"button {action}"), ephemeral=True)
        return
    await send_result(bot, interaction, result, f"button {action}")


async def send_result(bot: EgakuBot, interaction: discord.Interaction, result: TurnResult, where: str) -> None:
    """Post a result as a followup, with its own buttons, and remember which message shows it."""
    notice = failure_notice(result.failures, where)
    outgoing = with_buttons(compose(result.reply, result.images, notice), result.images)
    sent = await followup(interaction, outgoing, where)
    await remember_shown(bot, result, sent)
