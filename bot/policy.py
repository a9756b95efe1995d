"""Where the bot may draw and under which rules: permissions, a server's policy, a user's preferences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from egaku.i18n import Text, _, n_
from tools.stores.preferences import GuildPolicy, UserPrefs

if TYPE_CHECKING:
    from bot.client import EgakuBot


def missing_permissions(perms: discord.Permissions) -> Text | None:
    """A polite sentence if the bot cannot post pictures here, before any LLM or GPU work."""
    # The permissions as Discord's own settings name them (its client shows them in the user's language).
    missing = [
        name for name, ok in ((_("Attach Files"), perms.attach_files), (_("Embed Links"), perms.embed_links)) if not ok
    ]
    if not missing:
        return None
    named = missing[0] if len(missing) == 1 else _("{first} and {second}", first=missing[0], second=missing[1])
    return n_(
        "I need the {permissions} permission in this channel to post pictures. Please ask a moderator to grant it.",
        "I need the {permissions} permissions in this channel to post pictures. Please ask a moderator to grant them.",
        len(missing),
        permissions=named,
    )


@dataclass(frozen=True)
class Here:
    """The settings that apply to one person in one place."""

    prefs: UserPrefs
    policy: GuildPolicy
    nsfw: bool  # NSFW allowed: the server allows it and the channel is marked NSFW

    def refusal(self, channel_id: int) -> Text | None:
        """Why the bot will not draw in this channel, if it will not."""
        return channel_refusal(self.policy, channel_id)


def channel_refusal(policy: GuildPolicy, channel_id: int) -> Text | None:
    """Why the bot will not draw in this channel under a server's policy, if it will not."""
    if policy.allows(channel_id):
        return None
    places = ", ".join(f"<#{c}>" for c in policy.channels)
    return _("I don't draw in this channel on this server. Try {places}.", places=places)


async def command_refusal(bot: EgakuBot, interaction: discord.Interaction) -> Text | None:
    """Why a drawing command cannot run here, read before its defer: the bot's permissions, the server's channels."""
    policy = await policy_for(bot, interaction.guild_id)
    return missing_permissions(interaction.app_permissions) or channel_refusal(policy, interaction.channel_id or 0)


async def policy_for(bot: EgakuBot, guild_id: int | None) -> GuildPolicy:
    """The server's policy (defaults for DMs and servers that never used /settings); cached."""
    store = bot.services.preferences
    return await store.guild(str(guild_id) if guild_id else None) if store else GuildPolicy()


async def here(bot: EgakuBot, user_id: int, guild_id: int | None, channel: object) -> Here:
    """Load the user's preferences and the server's policy (defaults when /settings was never used)."""
    store = bot.services.preferences
    prefs = await store.user(str(user_id)) if store else UserPrefs()
    policy = await policy_for(bot, guild_id)
    return Here(prefs=prefs, policy=policy, nsfw=policy.nsfw and is_nsfw(channel))


def is_nsfw(channel: object) -> bool:
    """A guild channel marked NSFW; DMs and everything else count as not NSFW."""
    check = getattr(channel, "is_nsfw", None)
    return bool(check()) if callable(check) and getattr(channel, "guild", None) is not None else False
