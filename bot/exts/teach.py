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
from bot.language import interaction_voice
from bot.policy import channel_refusal, policy_for
from bot.progress import StatusReporter
from egaku.errors import report
from egaku.i18n import Text, Voice, _
from tools.checks.uploads import fetch_attachment
from tools.service.requests import Refused, Requester, Waiting
from tools.service.teaching import ConceptService, Taught
from tools.stores.concepts import NAME_RULE, Concept, concept_name
from worker.protocol import MAX_TEACH_IMAGES, MIN_TEACH_IMAGES, ProgressEvent

if TYPE_CHECKING:
    from bot.client import EgakuBot

NOT_HERE = _("Teaching words needs the image worker, and this bot has none connected.")
MODERATORS_ONLY = _("Only members with the Manage Server permission can manage this server's words.")
Picture = discord.Attachment | None


def lesson_line(token: str, event: ProgressEvent | Waiting) -> Text:
    """The status line while a word is learned: queue, then step, loss and ETA."""
    if isinstance(event, Waiting):
        return _("📚 Waiting to learn {token}…", token=token)
    if event.kind == "queued":
        wait = _(", about {eta:.0f} s", eta=event.eta_s) if event.eta_s else ""
        return _("📚 Waiting to learn {token} (position {position}{wait}); pictures are drawn first…", token=token,
                 position=event.position or 0, wait=wait)  # fmt: skip
    if event.kind == "step" and event.step and event.steps:
        loss = _(" · loss {loss:.4f}", loss=event.loss) if event.loss is not None else ""
        eta = _(" · about {eta:.0f} s left", eta=event.eta_s) if event.eta_s else ""
        return _("📚 Learning {token}… step {step}/{steps}{loss}{eta}", token=token, step=event.step,
                 steps=event.steps, loss=loss, eta=eta)  # fmt: skip
    return _("📚 Learning {token}…", token=token)


def learned(taught: Taught, count: int) -> Text:
    """The done message."""
    concept = taught.concept
    loss = _(", loss {loss:.4f}", loss=concept.loss) if concept.loss is not None else ""
    early = _(" (stopped early by the time limit)") if taught.stopped_by == "time" else ""
    return _(
        "I learned **{token}** from {count} pictures ({steps} steps{loss}){early}. "
        "Use it in any request here, in any language: `draw {token} on the moon`.",
        token=concept.token, count=count, steps=taught.steps, loss=loss, early=early,
    )  # fmt: skip


def listed(concept: Concept) -> Text:
    """One line of /concepts list."""
    day = datetime.fromtimestamp(concept.created, UTC).strftime("%Y-%m-%d")
    return _(
        "**{token}** · taught by <@{owner}> on {day} · model {model} · {count} pictures",
        token=concept.token, owner=concept.owner_id, day=day, model=concept.model, count=len(concept.sources),
    )  # fmt: skip


class Teach(commands.Cog):
    """/teach, and the /concepts group for moderators."""

    concepts = app_commands.Group(
        name="concepts",
        description="This server's taught words (moderators)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
        # A server's words belong to a server the bot is in.
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
    )

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="teach", description="Teach me a new word from 3 to 10 pictures of one thing")
    @app_commands.describe(
        name="The new word, e.g. our-mascot (you then write <our-mascot> in requests)",
        image1="A picture of it", image2="Another picture", image3="Another picture",
        image4="One more (optional)", image5="One more (optional)", image6="One more (optional)",
        image7="One more (optional)", image8="One more (optional)", image9="One more (optional)",
        image10="One more (optional)",
        like="An everyday word for what it is (e.g. toy, cat, logo); it is where learning starts",
    )  # fmt: skip
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
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
        voice = interaction_voice(self.bot, interaction)
        attached = [a for a in (image1, image2, image3, image4, image5, image6, image7, image8, image9, image10) if a]
        problem = channel_refusal(await policy_for(self.bot, interaction.guild_id), interaction.channel_id or 0)
        if services.concepts is None or services.session is None:
            problem = problem or NOT_HERE
        if any((a.content_type or "").split(";")[0] not in IMAGE_TYPES for a in attached):
            problem = problem or NOT_AN_IMAGE
        try:
            concept_name(name)
        except ValueError:
            problem = problem or _("I can't use that name: {reason}.", reason=NAME_RULE)
        if problem:
            await interaction.response.send_message(voice(problem), ephemeral=True)
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
            await interaction.followup.send(report(exc, "/teach", voice), ephemeral=True)
            await answered(self.bot, answer)
            return
        who = Requester(
            user_id=str(interaction.user.id),
            user_words=f"/teach {name}",
            guild_id=str(interaction.guild_id),
            channel_id=str(interaction.channel_id),
            source_id=str(interaction.id),
            watch=self._status(interaction, f"<{concept_name(name)}>", voice),
        )
        outcome = await services.concepts.teach(who, name, pictures, like)
        if isinstance(outcome, Taught):
            await interaction.followup.send(voice(learned(outcome, len(pictures))))
        elif isinstance(outcome, Refused):
            refused = _("I couldn't learn that word: {reason}.", reason=outcome.reason)
            await interaction.followup.send(voice(refused), ephemeral=True)
        else:
            await interaction.followup.send(report(outcome.error, "/teach", voice), ephemeral=True)
        await answered(self.bot, answer)

    def _status(self, interaction: discord.Interaction, token: str, voice: Voice) -> StatusReporter | None:
        """A status message from the start (training takes minutes), with step, loss, ETA and Cancel."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return None
        return StatusReporter(
            self.bot, channel.send, interaction.user.id, interaction.channel_id or 0, voice, show_after_s=0.0,
            edit_interval_s=self.bot.services.status_edit_s, describe=functools.partial(lesson_line, token),
        )  # fmt: skip

    @concepts.command(name="list", description="The words taught here")
    async def list_words(self, interaction: discord.Interaction) -> None:
        """List this server's words."""
        concepts = await self._moderated(interaction)
        if concepts is None:
            return
        voice = interaction_voice(self.bot, interaction)
        words = await concepts.store.of(str(interaction.guild_id))
        lines = [listed(c) for c in words] or [_("No words yet. Teach one with /teach ({least}-{most} pictures).",
                                                 least=MIN_TEACH_IMAGES, most=MAX_TEACH_IMAGES)]  # fmt: skip
        await interaction.response.send_message("\n".join(voice(line) for line in lines)[:2000], ephemeral=True)

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
        text = _("Renamed to **{token}**.", token=outcome.token) if isinstance(outcome, Concept) else _(
            "{reason}.", reason=outcome.reason
        )  # fmt: skip
        await interaction.response.send_message(interaction_voice(self.bot, interaction)(text), ephemeral=True)

    @concepts.command(name="delete", description="Forget a taught word and delete its files")
    @app_commands.describe(name="The word to forget")
    async def delete(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 40]) -> None:
        """Delete a word and its files."""
        concepts = await self._moderated(interaction)
        if concepts is None:
            return
        outcome = await concepts.delete(str(interaction.guild_id), name)
        if isinstance(outcome, Concept):
            text = _("Forgot **{token}** and deleted its files.", token=outcome.token)
        else:
            text = _("{reason}.", reason=outcome.reason)
        await interaction.response.send_message(interaction_voice(self.bot, interaction)(text), ephemeral=True)

    async def _moderated(self, interaction: discord.Interaction) -> ConceptService | None:
        """The words service for a moderator; otherwise a polite refusal and None."""
        concepts = self.bot.services.concepts
        voice = interaction_voice(self.bot, interaction)
        if concepts is None or interaction.guild_id is None:
            await interaction.response.send_message(voice(NOT_HERE), ephemeral=True)
            return None
        # default_permissions only hides the command; a server can grant it to anyone, so check here too.
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message(voice(MODERATORS_ONLY), ephemeral=True)
            return None
        return concepts


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Teach(bot))
