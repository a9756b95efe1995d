"""Where a turn's result meets Discord: conversation ids, and which message shows which image."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import discord

from agent.service import TurnRequest, TurnResult
from bot.progress import watch_for
from tools.context import ImageOptions, JobWatch
from tools.preferences import GuildPolicy, UserPrefs

if TYPE_CHECKING:
    from bot.client import EgakuBot


class SeenOnce:
    """Remembers recent keys (interaction ids, presses in flight) so that a replay does nothing twice."""

    def __init__(self, size: int = 4096) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, key: str) -> bool:
        """True the first time a key is seen; False for a replay."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True

    def forget(self, key: str) -> None:
        """Allow a key again (a press that finished)."""
        self._keys.pop(key, None)


def missing_permissions(perms: discord.Permissions) -> str | None:
    """A polite sentence if the bot cannot post pictures here, before any LLM or GPU work."""
    missing = [
        name for name, ok in (("Attach Files", perms.attach_files), ("Embed Links", perms.embed_links)) if not ok
    ]
    if not missing:
        return None
    return (
        f"I need the {' and '.join(missing)} permission{'s' if len(missing) > 1 else ''} in this channel "
        "to post pictures. Please ask a moderator to grant them."
    )


@dataclass(frozen=True)
class Here:
    """The settings that apply to one person in one place."""

    prefs: UserPrefs
    policy: GuildPolicy
    nsfw: bool  # NSFW allowed: the server allows it and the channel is marked NSFW

    def refusal(self, channel_id: int) -> str | None:
        """Why the bot will not draw in this channel, if it will not."""
        return channel_refusal(self.policy, channel_id)


def channel_refusal(policy: GuildPolicy, channel_id: int) -> str | None:
    """Why the bot will not draw in this channel under a server's policy, if it will not."""
    if policy.allows(channel_id):
        return None
    places = ", ".join(f"<#{c}>" for c in policy.channels)
    return f"I don't draw in this channel on this server. Try {places}."


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


def turn_request(
    settings: Here,
    user: discord.abc.User,
    *,
    channel_id: int | None,
    guild_id: int | None,
    source_id: int,
    text: str,
    watch: JobWatch | None,
    chosen: ImageOptions | None = None,
    must_draw: bool = False,
    reply_to: int | None = None,
) -> TurnRequest:
    """The one way every front end (chat, /imagine, buttons) turns a Discord event into a turn.

    `chosen` are the options the user picked for this request; their /settings defaults and the
    server's model fill in what they left out.
    """
    chosen = chosen or ImageOptions()
    options = replace(
        chosen,
        aspect=chosen.aspect or settings.prefs.aspect,
        style=chosen.style or settings.prefs.style,
        model=chosen.model or settings.policy.model,
    )
    return TurnRequest(
        conversation_id=conversation_id(channel_id or 0),
        user_id=str(user.id),
        user_name=user.display_name,
        text=text,
        must_draw=must_draw,
        guild_id=str(guild_id) if guild_id else None,
        channel_id=str(channel_id),
        source_id=str(source_id),
        reply_to=str(reply_to) if reply_to else None,
        options=options,
        watch=watch,
        nsfw=settings.nsfw,
        guild_cap=settings.policy.max_jobs,
        best_of=settings.policy.best_of,
        language=settings.prefs.language,
    )


def interaction_turn(
    bot: EgakuBot, interaction: discord.Interaction, settings: Here, text: str, **more: Any
) -> TurnRequest:
    """The turn for a slash command, a button or a modal, with a status message in its channel."""
    return turn_request(
        settings,
        interaction.user,
        channel_id=interaction.channel_id,
        guild_id=interaction.guild_id,
        source_id=interaction.id,
        text=text,
        watch=watch_for(bot, interaction),
        **more,
    )


def conversation_id(channel_id: int) -> str:
    """A channel, a thread or a DM is one conversation."""
    return f"discord:{channel_id}"


async def remember_shown(bot: EgakuBot, result: TurnResult, sent: list[discord.Message]) -> None:
    """Link the turn's images to the message that shows them, for reply-to-edit."""
    history = bot.services.history
    ids = [image.id for image in result.images if image.id]
    if history is not None and ids and sent:
        await history.attach_message(ids, str(sent[-1].id))
