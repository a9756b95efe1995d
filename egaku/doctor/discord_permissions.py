"""The bot's permissions in each server it is in, and in each text channel there, computed as Discord does."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import discord

from egaku.config import DiscordSettings
from egaku.doctor.discord_account import unreadable
from egaku.doctor.discord_api import BotUser, Channel, DiscordAPI, Member, Overwrite, PartialGuild, parse, parse_list
from egaku.doctor.findings import Finding, fail, ok, warn

MAX_SERVERS = 25  # servers checked one by one (two requests each); the rest are counted only

# What egaku needs, by discord.py's flag name, with the portal's wording.
LABELS = {
    "view_channel": "View Channels",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "read_message_history": "Read Message History",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
}
IN_TEXT = tuple(LABELS)
# Forum and media channels hold only threads: Send Messages there means nothing.
IN_FORUM = tuple(name for name in LABELS if name != "send_messages")
TEXT_TYPES = {0: IN_TEXT, 5: IN_TEXT, 15: IN_FORUM, 16: IN_FORUM}
VIEW = discord.Permissions(view_channel=True).value
ADMINISTRATOR = discord.Permissions(administrator=True).value
EVERYTHING = discord.Permissions.all().value
INVITE = (
    "Invite the bot again with the OAuth2 URL from the README (Creating the Discord application, step 4): it asks "
    "for every permission egaku needs."
)


def lacking(permissions: int, needed: Sequence[str]) -> list[str]:
    """The portal names of the needed permissions that `permissions` does not grant."""
    granted = discord.Permissions(permissions)
    return [LABELS[name] for name in needed if not getattr(granted, name)]


def _apply(permissions: int, overwrite: Overwrite | None) -> int:
    return permissions if overwrite is None else (permissions & ~overwrite.deny) | overwrite.allow


def channel_permissions(base: int, guild_id: int, member_id: int, roles: Collection[int],
                        overwrites: Sequence[Overwrite]) -> int:  # fmt: skip
    """A member's permissions in a channel: the server's, then @everyone's, the roles' and the member's overwrites.

    This is Discord's documented order. Without View Channels a member has no permission there at all.
    """
    if base & ADMINISTRATOR:
        return EVERYTHING
    permissions = _apply(base, next((o for o in overwrites if o.id == guild_id and o.type == 0), None))
    allow = deny = 0
    for o in overwrites:
        if o.type == 0 and o.id in roles:
            allow |= o.allow
            deny |= o.deny
    permissions = (permissions & ~deny) | allow
    permissions = _apply(permissions, next((o for o in overwrites if o.id == member_id and o.type == 1), None))
    return permissions if permissions & VIEW else 0


async def check_servers(
    api: DiscordAPI, bot: BotUser, settings: DiscordSettings, drawing: Mapping[int, Collection[int]]
) -> list[Finding]:
    """Which servers the bot is in, then its permissions in each (`drawing`: the channels /settings server chose)."""
    answer = await api.get("/users/@me/guilds")
    guilds = parse_list(PartialGuild, answer) if answer.status == 200 else None
    if guilds is None:
        return [unreadable("discord.servers", "GET /users/@me/guilds", answer, api)]
    ids = {g.id for g in guilds}
    absent = [gid for gid in settings.sync_guild_ids if gid not in ids]
    if absent:
        listed = ", ".join(map(str, absent))
        first = fail(
            "discord.servers",
            f"The bot is not in the server{'s' * (len(absent) > 1)} {listed} that discord.sync_guild_ids lists.",
            f"{INVITE} Or remove the id from discord.sync_guild_ids.",
        )
    elif not guilds:
        first = warn("discord.servers", "The bot is in no server yet.", INVITE)
    else:
        more = f"; the first {MAX_SERVERS} are checked below" if len(guilds) > MAX_SERVERS else ""
        first = ok("discord.servers", f"The bot is in {len(guilds)} server{'s' * (len(guilds) > 1)}{more}.")
    # The servers the config names come first.
    ordered = sorted(guilds, key=lambda g: (g.id not in settings.sync_guild_ids, g.id))[:MAX_SERVERS]
    return [first, *[await check_server(api, bot, g, drawing.get(g.id, ())) for g in ordered]]


async def check_server(api: DiscordAPI, bot: BotUser, guild: PartialGuild, drawing: Collection[int]) -> Finding:
    """The bot's permissions in one server, then in each of its text and forum channels."""
    check = f"discord.permissions.{guild.id}"
    where = f"In {guild.name} ({guild.id})"
    missing = lacking(guild.permissions, IN_TEXT)
    if missing and not guild.permissions & ADMINISTRATOR:
        names = ", ".join(missing)
        fix = f"Server Settings → Roles → the bot's role: turn on {names}. Or: {INVITE}"
        return fail(check, f"{where} the bot's roles lack {names}.", fix)
    member_answer = await api.get(f"/guilds/{guild.id}/members/{bot.id}")
    member = parse(Member, member_answer) if member_answer.status == 200 else None
    if member is None:
        return unreadable(check, f"GET /guilds/{guild.id}/members/{bot.id}", member_answer, api)
    channels_answer = await api.get(f"/guilds/{guild.id}/channels")
    channels = parse_list(Channel, channels_answer) if channels_answer.status == 200 else None
    if channels is None:
        return unreadable(check, f"GET /guilds/{guild.id}/channels", channels_answer, api)
    problems: list[str] = []
    severe = False
    seen = hidden = 0
    for channel in channels:
        needed = TEXT_TYPES.get(channel.type)
        if needed is None:
            continue
        permissions = channel_permissions(
            guild.permissions, guild.id, bot.id, member.roles, channel.permission_overwrites
        )
        chosen = channel.id in drawing
        if not permissions:
            hidden += 1
            if chosen:
                problems.append(f"#{channel.name}, where /settings server lets it draw, is hidden from it")
                severe = True
            continue
        seen += 1
        missing = lacking(permissions, needed)
        if missing:
            problems.append(f"#{channel.name} lacks {', '.join(missing)}")
            severe |= chosen
    if problems:
        message = f"{where} the bot's channel permissions fall short: {'; '.join(problems)}."
        fix = (
            "Edit Channel → Permissions → the bot's role: allow what is listed (or remove the overwrite that "
            "denies it). A channel chosen with /settings server must allow all of it."
        )
        return (fail if severe else warn)(check, message, fix)
    unseen = f" It cannot see {hidden} other channel{'s' * (hidden != 1)}, and does not answer there." if hidden else ""
    message = (
        f"{where} the bot has every permission it needs in the {seen} channel{'s' * (seen != 1)} it can see.{unseen}"
    )
    return ok(check, message)
