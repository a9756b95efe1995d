"""Are the bot's slash commands registered where `sync_guild_ids` says (each listed server, or globally)?"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from egaku.config import DiscordSettings
from egaku.doctor.discord_account import unreadable
from egaku.doctor.discord_api import Command, CommandOption, DiscordAPI, parse_list
from egaku.doctor.findings import Finding, fail, ok, warn

if TYPE_CHECKING:
    from bot.client import EgakuBot

Shape = tuple[str, tuple[Any, ...]]


@contextlib.asynccontextmanager
async def built_bot() -> AsyncIterator[EgakuBot]:
    """The bot with its extensions loaded and its command tree built, never logged in (closed on exit).

    The extensions only keep the bot when they are built, so no services are needed here.
    """
    from bot.client import EgakuBot
    from bot.services import BotServices

    services = BotServices(agent=cast(Any, None), images=cast(Any, None))
    client_log = logging.getLogger("discord.client")
    level = client_log.level
    client_log.setLevel(logging.ERROR)  # its warnings about voice support mean nothing to the doctor
    try:
        bot = EgakuBot(services, DiscordSettings(sync_commands=False))
    finally:
        client_log.setLevel(level)
    try:
        await bot.setup_hook()
        yield bot
    finally:
        await bot.close()


async def bot_commands() -> list[Command]:
    """The slash commands exactly as the bot builds its command tree (extensions loaded, nothing synced)."""
    async with built_bot() as bot:
        return [Command.model_validate(c.to_dict(bot.tree)) for c in bot.tree.get_commands()]


def _options(options: list[CommandOption]) -> tuple[Any, ...]:
    return tuple((o.name, o.type, _options(o.options)) for o in options)


def shape(command: Command) -> Shape:
    """What must match for a registered command to be the bot's: its name and its options' names and types."""
    return command.name, _options(command.options)


def _slashed(names: list[str]) -> str:
    return ", ".join(f"/{n}" for n in names)


async def check_commands(
    api: DiscordAPI, application_id: int, settings: DiscordSettings, expected: list[Command]
) -> list[Finding]:
    """One finding per listed server, or one for the global commands."""
    if not settings.sync_guild_ids:
        return [await _check_scope(api, f"/applications/{application_id}/commands", None, settings, expected)]
    return [
        await _check_scope(api, f"/applications/{application_id}/guilds/{gid}/commands", gid, settings, expected)
        for gid in settings.sync_guild_ids
    ]


async def _check_scope(
    api: DiscordAPI, path: str, guild_id: int | None, settings: DiscordSettings, expected: list[Command]
) -> Finding:
    check = "discord.commands" if guild_id is None else f"discord.commands.{guild_id}"
    where = "globally" if guild_id is None else f"in server {guild_id}"
    if settings.sync_commands:
        resync = "Start the bot: it registers its commands at start-up (if they still do not appear, look for "
        resync += "'could not sync the slash commands' in its log)."
    else:
        resync = "discord.sync_commands is false: set it to true and start the bot once."
    if guild_id is None:
        resync += " Global commands can take a while to show; discord.sync_guild_ids registers them in a server "
        resync += "at once."
    answer = await api.get(path)
    if answer.status == 403:
        message = (
            f"Discord will not list the bot's commands {where} (403: {answer.server_message() or 'Missing Access'}): "
            "the bot was invited without the applications.commands scope."
        )
        fix = "Invite the bot again with the scopes bot and applications.commands (README, step 4)."
        return fail(check, message, fix)
    registered = parse_list(Command, answer) if answer.status == 200 else None
    if registered is None:
        return unreadable(check, f"GET {path}", answer, api)
    have = {c.name: shape(c) for c in registered}
    missing = [c.name for c in expected if c.name not in have]
    if missing:
        return fail(check, f"Slash commands missing {where}: {_slashed(missing)}.", resync)
    stale = [c.name for c in expected if have[c.name] != shape(c)]
    extra = sorted(set(have) - {c.name for c in expected})
    if stale or extra:
        parts = []
        if stale:
            parts.append(f"{_slashed(stale)} {'has' if len(stale) == 1 else 'have'} other options than this egaku's")
        if extra:
            parts.append(f"{_slashed(extra)} {'is' if len(extra) == 1 else 'are'} not egaku's any more")
        return warn(check, f"The slash commands {where} are out of date: {'; '.join(parts)}.", resync)
    names = _slashed([c.name for c in expected])
    return ok(check, f"All {len(expected)} slash commands are registered {where}: {names}.")
