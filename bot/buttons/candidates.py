"""🏅 Show the other candidates: after a best-of-N render, the pictures it beat, with their scores."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord

from bot.buttons.action import ButtonAction, Post
from bot.deliver import followup
from bot.language import interaction_voice
from bot.render import compose
from egaku.i18n import _
from tools.pictures import RenderedImage, as_rendered
from tools.stores.history import Generation

if TYPE_CHECKING:
    from bot.client import EgakuBot

NO_CANDIDATES = _("This picture was drawn alone: there are no other candidates.")


def shown(generation: Generation, png: bytes) -> RenderedImage:
    """A history entry as an image to post again."""
    return as_rendered(generation, png, id=generation.id)


async def show_candidates(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """The best-of candidates a posted picture was chosen over, each with its score, for the presser only."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    voice = interaction_voice(bot, interaction)
    history = bot.services.history
    assert history is not None  # the button found its picture there
    losers = await history.candidates(generation.id)
    if not losers:
        await interaction.followup.send(voice(NO_CANDIDATES), ephemeral=True)
        return
    pngs = await asyncio.to_thread(lambda: [history.png(g) for g in losers])  # disk reads: not on the loop
    images = [shown(g, png) for g, png in zip(losers, pngs, strict=True)]
    best = _("The posted picture (`{id}`) scored **{score:.2f}**, the best of {count}. The others, best first:",
             id=generation.id, score=generation.score or 0.0, count=len(losers) + 1)  # fmt: skip
    lines = [voice(_("`{id}` · seed {seed} · score **{score:.2f}**", id=g.id, seed=g.seed, score=g.score or 0.0))
             for g in losers]  # fmt: skip
    outgoing = compose("\n".join([voice(best), *lines]), images, None, voice)
    for out in outgoing:
        out.ephemeral = True
    await followup(interaction, outgoing, "button candidates", voice)


CANDIDATES = ButtonAction("candidates", "🏅", _("Show the other candidates"), show_candidates)
