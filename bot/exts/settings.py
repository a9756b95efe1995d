"""/settings me (your defaults) and /settings server (administrators: NSFW, channels, caps, model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.choices import ASPECTS
from bot.language import interaction_voice
from egaku.errors import TooManyCandidates
from egaku.i18n import Voice, _
from tools.stores.preferences import GuildPolicy, UserPrefs
from worker.protocol import MAX_BEST_OF, STYLES

if TYPE_CHECKING:
    from bot.client import EgakuBot

CLEAR = "none"
NOT_AVAILABLE = _("Settings are not available here.")
BOT_DEFAULT = _("bot default")


def show_user(prefs: UserPrefs, voice: Voice) -> str:
    """The user's settings, as an ephemeral message."""
    return voice(
        _(
            "**Your settings**\naspect: {aspect} · style: {style} · raw: {raw} · reply language: {language}",
            aspect=prefs.aspect or _("model decides"),
            style=prefs.style or _("none"),
            raw=_("on") if prefs.raw else _("off"),
            language=prefs.language or _("same as you write"),
        )
    )


def show_guild(policy: GuildPolicy, voice: Voice) -> str:
    """The server's settings, as an ephemeral message."""
    return voice(
        _(
            "**Server settings**\nNSFW in NSFW-marked channels: {nsfw} · channels: {channels} · "
            "images in flight: {jobs} · default model: {model} · best of: {best_of}",
            nsfw=_("allowed") if policy.nsfw else _("not allowed"),
            channels=", ".join(f"<#{c}>" for c in policy.channels) or _("everywhere"),
            jobs=policy.max_jobs or BOT_DEFAULT,
            model=policy.model or BOT_DEFAULT,
            best_of=policy.best_of or BOT_DEFAULT,
        )
    )


@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Settings(commands.GroupCog, group_name="settings", group_description="Your defaults, and the server's rules"):
    """/settings me and /settings server."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="me", description="Your defaults for pictures (leave options empty to see them)")
    @app_commands.describe(
        aspect="Default shape", style="Default style preset", raw="Draw your words as written, without the rewrite",
        language="Language for my replies (e.g. 日本語, English); 'none' to follow yours",
    )  # fmt: skip
    @app_commands.choices(
        aspect=[app_commands.Choice(name=f"{label} ({v})", value=v) for v, label in ASPECTS.items()]
        + [app_commands.Choice(name="model decides", value=CLEAR)],
        style=[app_commands.Choice(name=s, value=s) for s in STYLES] + [app_commands.Choice(name="none", value=CLEAR)],
    )
    async def me(
        self,
        interaction: discord.Interaction,
        aspect: str | None = None,
        style: str | None = None,
        raw: bool | None = None,
        language: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        """Show or change your defaults."""
        voice = interaction_voice(self.bot, interaction)
        store = self.bot.services.preferences
        if store is None:
            await interaction.response.send_message(voice(NOT_AVAILABLE), ephemeral=True)
            return
        prefs = await store.user(str(interaction.user.id))
        changes: dict[str, object] = {}
        if aspect is not None:
            changes["aspect"] = None if aspect == CLEAR else aspect
        if style is not None:
            changes["style"] = None if style == CLEAR else style
        if raw is not None:
            changes["raw"] = raw
        if language is not None:
            changes["language"] = None if language.lower() == CLEAR else language
        if changes:
            prefs = UserPrefs.model_validate({**prefs.model_dump(), **changes})
            await store.set_user(str(interaction.user.id), prefs)
        await interaction.response.send_message(show_user(prefs, voice), ephemeral=True)

    @app_commands.command(name="server", description="Server rules for egaku (administrators)")
    @app_commands.describe(
        nsfw="Allow NSFW pictures in channels marked NSFW",
        only_here="Draw only in this channel (on), or add/remove it from the allowed list",
        everywhere="Draw in every channel again",
        max_jobs="How many pictures may be in flight for the whole server",
        model="Default model for this server ('none' for the bot's default)",
        best_of="Candidates drawn per picture; the best-matching one is posted (1: off)",
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def server(
        self,
        interaction: discord.Interaction,
        nsfw: bool | None = None,
        only_here: bool | None = None,
        everywhere: bool | None = None,
        max_jobs: app_commands.Range[int, 1, 1024] | None = None,
        model: app_commands.Range[str, 1, 128] | None = None,
        best_of: app_commands.Range[int, 1, MAX_BEST_OF] | None = None,
    ) -> None:
        """Show or change the server's rules; Manage Server permission required."""
        voice = interaction_voice(self.bot, interaction)
        store = self.bot.services.preferences
        if store is None or interaction.guild_id is None:
            await interaction.response.send_message(voice(NOT_AVAILABLE), ephemeral=True)
            return
        if not interaction.permissions.manage_guild:
            moderators = _("Only members with the Manage Server permission can change these.")
            await interaction.response.send_message(voice(moderators), ephemeral=True)
            return
        policy = await store.guild(str(interaction.guild_id))
        changes: dict[str, object] = {}
        if nsfw is not None:
            changes["nsfw"] = nsfw
        here = str(interaction.channel_id)
        if only_here is not None:
            channels = [c for c in policy.channels if c != here]
            changes["channels"] = [*channels, here] if only_here else channels
        if everywhere:
            changes["channels"] = []
        if max_jobs is not None:
            changes["max_jobs"] = max_jobs
        if model is not None:
            changes["model"] = None if model.lower() == CLEAR else model
        if best_of is not None:
            try:
                self.bot.services.images.check_best_of(best_of)
            except TooManyCandidates as exc:
                await interaction.response.send_message(voice(exc.text), ephemeral=True)
                return
            changes["best_of"] = best_of
        if changes:
            policy = GuildPolicy.model_validate({**policy.model_dump(), **changes})
            await store.set_guild(str(interaction.guild_id), policy)
        await interaction.response.send_message(show_guild(policy, voice), ephemeral=True)


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Settings(bot))
