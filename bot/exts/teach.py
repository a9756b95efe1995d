"""/teach (a new word from 3 to 10 pictures) and /concepts (a server's words: list, rename, delete)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.answering import answered, interaction_answer, opened
from bot.choices import IMAGE_TYPES, NOT_AN_IMAGE
from bot.policy import channel_refusal, policy_for
from bot.progress import StatusReporter
from egaku.errors import report
from tools.checks.uploads import fetch_attachment
from tools.service.requests import Refused, Requester, Waiting
from tools.service.teaching import ConceptService, Taught
from tools.stores.concepts import Concept, concept_name
from worker.protocol import MAX_TEACH_IMAGES, MIN_TEACH_IMAGES, ProgressEvent

if TYPE_CHECKING:
    from bot.client import EgakuBot

NOT_HERE = "Teaching words needs the image worker, and this bot has none connected."
MODERATORS_ONLY = "Only members with the Manage Server permission can manage this server's words."
Picture = discord.Attachment | None


def lesson_line(token: str, event: ProgressEvent | Waiting) -> str:
    """The status line while a word is learned: queue, then step, loss and ETA."""
    if isinstance(event, Waiting):
        return f"📚 Waiting to learn {token}…"
    if event.kind == "queued":
        wait = f", about {event.eta_s:.0f} s" if event.eta_s else ""
        return f"📚 Waiting to learn {token} (position {event.position}{wait}); pictures are drawn first…"
    if event.kind == "step" and event.step and event.steps:
        loss = f" · loss {event.loss:.4f}" if event.loss is not None else ""
        eta = f" · about {event.eta_s:.0f} s left" if event.eta_s else ""
        return f"📚 Learning {token}… step {event.step}/{event.steps}{loss}{eta}"
    return f"📚 Learning {token}…"


def learned(taught: Taught, count: int) -> str:
    """The done message."""
    concept = taught.concept
    loss = f", loss {concept.loss:.4f}" if concept.loss is not None else ""
    early = " (stopped early by the time limit)" if taught.stopped_by == "time" else ""
    return (
        f"I learned **{concept.token}** from {count} pictures ({taught.steps} steps{loss}){early}. "
        f"Use it in any request here, in any language: `draw {concept.token} on the moon`."
    )


def listed(concept: Concept) -> str:
    """One line of /concepts list."""
    day = datetime.fromtimestamp(concept.created, UTC).strftime("%Y-%m-%d")
    return (
        f"**{concept.token}** · taught by <@{concept.owner_id}> on {day} · model {concept.model} "
        f"· {len(concept.sources)} pictures"
    )


class Teach(commands.Cog):
    """/teach, and the /concepts group for moderators."""

    concepts = app_commands.Group(
        name="concepts",
        description="This server's taught words (moderators)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="teach", description="Teach me a new word from 3 to 10 pictures of one thing")
    @app_commands.describe(
        name="The new word, e.g. our-mascot (you then write <our-mascot> in requests)",
        image1="A picture of it", image2="Another picture", image3="Another picture",
        like="An everyday word for what it is (e.g. toy, cat, logo); it is where learning starts",
    )  # fmt: skip
    @app_commands.guild_only()
    async def teach(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, 40],
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment,
        image4: Picture = None,
        image5: Picture = None,
        image6: Picture = None,
        image7: Picture = None,
        image8: Picture = None,
        image9: Picture = None,
        image10: Picture = None,
        like: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        """Check the pictures, defer, fetch them safely, train on the worker with a status message, keep the word."""
        if not self.bot.seen.first_time(f"interaction:{interaction.id}"):
            return
        services = self.bot.services
        attached = [a for a in (image1, image2, image3, image4, image5, image6, image7, image8, image9, image10) if a]
        problem = channel_refusal(await policy_for(self.bot, interaction.guild_id), interaction.channel_id or 0)
        if services.concepts is None or services.session is None:
            problem = problem or NOT_HERE
        if any((a.content_type or "").split(";")[0] not in IMAGE_TYPES for a in attached):
            problem = problem or NOT_AN_IMAGE
        try:
            concept_name(name)
        except ValueError as exc:
            problem = problem or f"I can't use that name: {exc}."
        if problem:
            await interaction.response.send_message(problem, ephemeral=True)
            return
        assert services.concepts is not None and services.session is not None
        deferred = await interaction.response.defer(thinking=True)
        # A restart mid-lesson cannot take the training up again, but the asker is told (bot.resume).
        answer = interaction_answer(interaction, deferred)
        await opened(self.bot, answer)
        try:
            # Every picture passes the checks any upload passes (size, format, bombs) before any training.
            pictures = [
                await fetch_attachment(services.session, a.url, a.size, a.filename, extra_hosts=services.upload_hosts)
                for a in attached
            ]
        except Exception as exc:
            await interaction.followup.send(report(exc, "/teach"), ephemeral=True)
            await answered(self.bot, answer)
            return
        who = Requester(
            user_id=str(interaction.user.id),
            user_words=f"/teach {name}",
            guild_id=str(interaction.guild_id),
            channel_id=str(interaction.channel_id),
            source_id=str(interaction.id),
            watch=self._status(interaction, f"<{concept_name(name)}>"),
        )
        outcome = await services.concepts.teach(who, name, pictures, like)
        if isinstance(outcome, Taught):
            await interaction.followup.send(learned(outcome, len(pictures)))
        elif isinstance(outcome, Refused):
            await interaction.followup.send(f"I couldn't learn that word: {outcome.reason}.", ephemeral=True)
        else:
            await interaction.followup.send(report(outcome.error, "/teach"), ephemeral=True)
        await answered(self.bot, answer)

    def _status(self, interaction: discord.Interaction, token: str) -> StatusReporter | None:
        """A status message from the start (training takes minutes), with step, loss, ETA and Cancel."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return None
        return StatusReporter(
            self.bot, channel, interaction.user.id, interaction.channel_id or 0, show_after_s=0.0,
            edit_interval_s=self.bot.services.status_edit_s, describe=functools.partial(lesson_line, token),
        )  # fmt: skip

    @concepts.command(name="list", description="The words taught here")
    async def list_words(self, interaction: discord.Interaction) -> None:
        """List this server's words."""
        concepts = await self._moderated(interaction)
        if concepts is None:
            return
        words = await concepts.store.of(str(interaction.guild_id))
        lines = [listed(c) for c in words] or [f"No words yet. Teach one with /teach ({MIN_TEACH_IMAGES}-"
                                               f"{MAX_TEACH_IMAGES} pictures)."]  # fmt: skip
        await interaction.response.send_message("\n".join(lines)[:2000], ephemeral=True)

    @concepts.command(name="rename", description="Give a taught word a new name")
    @app_commands.describe(name="The word now", new_name="Its new name")
    async def rename(
        self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 40],
        new_name: app_commands.Range[str, 1, 40],
    ) -> None:  # fmt: skip
        """Rename a word."""
        concepts = await self._moderated(interaction)
        if concepts is None:
            return
        outcome = await concepts.rename(str(interaction.guild_id), name, new_name)
        text = f"Renamed to **{outcome.token}**." if isinstance(outcome, Concept) else f"{outcome.reason}."
        await interaction.response.send_message(text, ephemeral=True)

    @concepts.command(name="delete", description="Forget a taught word and delete its files")
    @app_commands.describe(name="The word to forget")
    async def delete(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 40]) -> None:
        """Delete a word and its files."""
        concepts = await self._moderated(interaction)
        if concepts is None:
            return
        outcome = await concepts.delete(str(interaction.guild_id), name)
        text = f"Forgot **{outcome.token}** and deleted its files." if isinstance(outcome, Concept) else (
            f"{outcome.reason}."
        )  # fmt: skip
        await interaction.response.send_message(text, ephemeral=True)

    async def _moderated(self, interaction: discord.Interaction) -> ConceptService | None:
        """The words service for a moderator; otherwise a polite refusal and None."""
        concepts = self.bot.services.concepts
        if concepts is None or interaction.guild_id is None:
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
            return None
        # default_permissions only hides the command; a server can grant it to anyone, so check here too.
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message(MODERATORS_ONLY, ephemeral=True)
            return None
        return concepts


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Teach(bot))
