"""The doctor's Discord checks against the fake Discord: token, intents, servers, permissions, commands."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import discord

from egaku.config import Config, DiscordSettings, StorageSettings
from egaku.doctor.discord_permissions import channel_permissions
from egaku.doctor.findings import Finding
from egaku.doctor.run import check_discord
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.egaku.doctor.conftest import TOKEN
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, NSFW_CHANNEL_ID, FakeDiscord, Fault
from tests.fakes.openai import FakeOpenAI
from tools.stores.preferences import GuildPolicy, Preferences

ENV = {"DISCORD_TOKEN": TOKEN}
COMMANDS = "/describe, /imagine, /reset, /settings, /concepts, /teach, /blend"
TOKEN_OK = Finding("discord.token", "ok", "The token in DISCORD_TOKEN is valid: it logs in as the bot egaku (id 900).")
INTENTS_OK = Finding(
    "discord.intents",
    "ok",
    "The Message Content intent is on in the Developer Portal and in the config: the bot also reads replies that "
    "do not mention it.",
)
SERVERS_OK = Finding("discord.servers", "ok", "The bot is in 1 server.")


def permissions_ok(fake: FakeDiscord, hidden: int = 0) -> Finding:
    """All is well in the fake's server, whose text channels the bot sees but `hidden` of them."""
    seen = len(fake.channels) - hidden
    unseen = f" It cannot see {hidden} other channel, and does not answer there." if hidden else ""
    message = f"In egaku test guild (1000) the bot has every permission it needs in the {seen} channels it can see."
    return Finding("discord.permissions.1000", "ok", message + unseen)


RESYNC = (
    "Start the bot: it registers its commands at start-up (if they still do not appear, look for 'could not sync "
    "the slash commands' in its log)."
)
GLOBAL_RESYNC = (
    f"{RESYNC} Global commands can take a while to show; discord.sync_guild_ids registers them in a server at once."
)
CHANNEL_FIX = (
    "Edit Channel → Permissions → the bot's role: allow what is listed (or remove the overwrite that denies it). A "
    "channel chosen with /settings server must allow all of it."
)
P = discord.Permissions
# What egaku asks for in its invite, and no Administrator (which overrides every overwrite).
INVITED = P(
    view_channel=True, send_messages=True, send_messages_in_threads=True, read_message_history=True,
    attach_files=True, embed_links=True,
).value  # fmt: skip


def config_for(fake: FakeDiscord, tmp_path: Path, **discord_settings: object) -> Config:
    settings = DiscordSettings(api_base=fake.api_base, gateway_url=fake.gateway_url, **discord_settings)  # type: ignore[arg-type]
    return Config(discord=settings, storage=StorageSettings(history_dir=str(tmp_path / "history")))


async def test_everything_in_order(synced: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    before = len(synced.requests)
    findings = await check_discord(session, config_for(synced, tmp_path), ENV)
    assert findings == [
        TOKEN_OK,
        INTENTS_OK,
        SERVERS_OK,
        permissions_ok(synced),
        Finding("discord.commands", "ok", f"All 7 slash commands are registered globally: {COMMANDS}."),
    ]
    # Every request carried the bot token, and nothing but reads were made.
    assert [(r.method, r.path) for r in synced.requests[before:]] == [
        ("GET", "/api/v10/users/@me"),
        ("GET", "/api/v10/oauth2/applications/@me"),
        ("GET", "/api/v10/users/@me/guilds"),
        ("GET", f"/api/v10/guilds/{GUILD_ID}/members/900"),
        ("GET", f"/api/v10/guilds/{GUILD_ID}/channels"),
        ("GET", "/api/v10/applications/900/commands"),
    ]


async def test_no_token(fake_discord: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    findings = await check_discord(session, config_for(fake_discord, tmp_path), {})
    assert findings == [
        Finding(
            "discord.token",
            "fail",
            "No Discord token: the environment variable DISCORD_TOKEN is not set.",
            "Developer Portal (discord.com/developers/applications) → your application → Bot → Reset Token, then "
            "set DISCORD_TOKEN to the new token (in Docker, the discord_token secret; see the README's Run with "
            "Docker).",
        ),
        Finding("discord.intents", "skip", "Not checked: no Discord token."),
        Finding("discord.servers", "skip", "Not checked: no Discord token."),
        Finding("discord.commands", "skip", "Not checked: no Discord token."),
    ]
    assert fake_discord.requests == []


async def test_a_refused_token(fake_discord: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    fake_discord.token = "the-real-token-elsewhere"
    findings = await check_discord(session, config_for(fake_discord, tmp_path), ENV)
    assert findings == [
        Finding(
            "discord.token",
            "fail",
            "Discord refused the token in DISCORD_TOKEN (401 Unauthorized).",
            "Developer Portal (discord.com/developers/applications) → your application → Bot → Reset Token, then "
            "set DISCORD_TOKEN to the new token. It is the bot's token, not the client secret or the public key.",
        ),
        Finding("discord.intents", "skip", "Not checked: the token did not log in."),
        Finding("discord.servers", "skip", "Not checked: the token did not log in."),
        Finding("discord.commands", "skip", "Not checked: the token did not log in."),
    ]


async def test_discord_unreachable(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    settings = DiscordSettings(api_base="http://127.0.0.1:9/api/v10")
    config = Config(discord=settings, storage=StorageSettings(history_dir=str(tmp_path)))
    findings = await check_discord(session, config, ENV)
    assert findings[0] == Finding(
        "discord.token",
        "fail",
        "Discord's API at http://127.0.0.1:9/api/v10 did not answer GET /users/@me: cannot connect (connection "
        "refused: nothing listens there).",
        "Check this host's network, DNS and proxy (and discord.api_base, if you changed it).",
    )


async def test_message_content_off_in_the_portal(
    synced: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    synced.refuse_message_content = True
    findings = await check_discord(session, config_for(synced, tmp_path), ENV)
    assert findings[1] == Finding(
        "discord.intents",
        "fail",
        "The config asks for the Message Content intent (discord.message_content_intent = true), but it is off in "
        "the Developer Portal. Discord refuses it at login (close code 4014) and egaku carries on without it: the "
        "bot reads only messages that mention it, DMs and slash commands; replies that do not mention it go unread.",
        "Developer Portal (discord.com/developers/applications) → your application → Bot → Privileged Gateway "
        "Intents → turn on Message Content Intent. Or set discord.message_content_intent = false.",
    )
    off = await check_discord(session, config_for(synced, tmp_path, message_content_intent=False), ENV)
    assert off[1] == Finding(
        "discord.intents",
        "ok",
        "The Message Content intent is off in the Developer Portal and in the config: the bot reads only messages "
        "that mention it, DMs and slash commands.",
    )


async def test_sync_guilds_the_bot_is_not_in_and_commands_never_synced_there(
    fake_discord: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    config = config_for(fake_discord, tmp_path, sync_guild_ids=[GUILD_ID, 4242])
    findings = await check_discord(session, config, ENV)
    assert findings[2] == Finding(
        "discord.servers",
        "fail",
        "The bot is not in the server 4242 that discord.sync_guild_ids lists.",
        "Invite the bot again with the OAuth2 URL from the README (Creating the Discord application, step 4): it "
        "asks for every permission egaku needs. Or remove the id from discord.sync_guild_ids.",
    )
    assert findings[4:] == [
        Finding("discord.commands.1000", "fail", f"Slash commands missing in server 1000: {COMMANDS}.", RESYNC),
        Finding(
            "discord.commands.4242",
            "fail",
            "Discord will not list the bot's commands in server 4242 (403: Missing Access): the bot was invited "
            "without the applications.commands scope.",
            "Invite the bot again with the scopes bot and applications.commands (README, step 4).",
        ),
    ]


async def test_commands_synced_in_the_listed_server(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord,
    session: aiohttp.ClientSession, tmp_path: Path,
) -> None:  # fmt: skip
    """The real bot syncs to sync_guild_ids; the doctor finds them there, and nothing is needed globally."""
    config = config_for(fake_discord, tmp_path, sync_guild_ids=[GUILD_ID])
    async with (
        app_for(app_config, fake_openai, worker_url) as app,
        running_bot(fake_discord, app.agent, sync=True, sync_guild_ids=(GUILD_ID,)),
    ):
        await fake_discord.wait_for_request(lambda r: r.method == "PUT" and r.path.endswith("/commands"))
    findings = await check_discord(session, config, ENV)
    assert findings[-1] == Finding(
        "discord.commands.1000", "ok", f"All 7 slash commands are registered in server 1000: {COMMANDS}."
    )


async def test_out_of_date_commands(synced: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    registered = synced.guild.commands[None]
    imagine = next(c for c in registered if c["name"] == "imagine")
    imagine["options"] = [o for o in imagine["options"] if o["name"] != "best_of"]
    registered.append({"name": "old", "type": 1, "description": "gone", "options": []})
    findings = await check_discord(session, config_for(synced, tmp_path, sync_commands=False), ENV)
    assert findings[-1] == Finding(
        "discord.commands",
        "warn",
        "The slash commands globally are out of date: /imagine has other options than this egaku's; /old is not "
        "egaku's any more.",
        "discord.sync_commands is false: set it to true and start the bot once. Global commands can take a while "
        "to show; discord.sync_guild_ids registers them in a server at once.",
    )


async def test_missing_server_permissions(synced: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    synced.guild.roles[GUILD_ID] = P(view_channel=True, send_messages=True, read_message_history=True).value
    findings = await check_discord(session, config_for(synced, tmp_path), ENV)
    assert findings[3] == Finding(
        "discord.permissions.1000",
        "fail",
        "In egaku test guild (1000) the bot's roles lack Send Messages in Threads, Attach Files, Embed Links.",
        "Server Settings → Roles → the bot's role: turn on Send Messages in Threads, Attach Files, Embed Links. Or: "
        "Invite the bot again with the OAuth2 URL from the README (Creating the Discord application, step 4): it "
        "asks for every permission egaku needs.",
    )


async def draw_only_in(config: Config, channel_id: int) -> None:
    """What /settings server stores when the server lets the bot draw in one channel only."""
    store = await Preferences.open(config.storage.settings_path)
    await store.set_guild(str(GUILD_ID), GuildPolicy(channels=[str(channel_id)]))
    await store.close()


async def test_channel_overwrites(synced: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """@everyone's overwrite denies Attach Files in one channel; a role of the bot's allows it again in another."""
    deny_attach = {"type": 0, "allow": "0", "deny": str(P(attach_files=True).value)}
    synced.guild.roles[GUILD_ID] = INVITED
    synced.guild.roles[77] = 0
    synced.guild.bot_roles = [77]
    synced.channels[CHANNEL_ID]["permission_overwrites"] = [{"id": str(GUILD_ID), **deny_attach}]
    synced.channels[NSFW_CHANNEL_ID]["permission_overwrites"] = [
        {"id": str(GUILD_ID), **deny_attach},
        {"id": "77", "type": 0, "allow": str(P(attach_files=True).value), "deny": "0"},
    ]
    config = config_for(synced, tmp_path)
    findings = await check_discord(session, config, ENV)
    lacking = "In egaku test guild (1000) the bot's channel permissions fall short: #chan-2000 lacks Attach Files."
    assert findings[3] == Finding("discord.permissions.1000", "warn", lacking, CHANNEL_FIX)
    # Once a server draws only in that channel (/settings server), it is a failure.
    await draw_only_in(config, CHANNEL_ID)
    findings = await check_discord(session, config, ENV)
    assert findings[3] == Finding("discord.permissions.1000", "fail", lacking, CHANNEL_FIX)


async def test_hidden_channels(synced: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    hide = [{"id": str(GUILD_ID), "type": 0, "allow": "0", "deny": str(P(view_channel=True).value)}]
    synced.guild.roles[GUILD_ID] = INVITED
    synced.channels[NSFW_CHANNEL_ID]["permission_overwrites"] = hide
    config = config_for(synced, tmp_path)
    findings = await check_discord(session, config, ENV)
    assert findings[3] == permissions_ok(synced, hidden=1)
    await draw_only_in(config, NSFW_CHANNEL_ID)
    findings = await check_discord(session, config, ENV)
    assert findings[3] == Finding(
        "discord.permissions.1000",
        "fail",
        "In egaku test guild (1000) the bot's channel permissions fall short: #chan-2001, where /settings server "
        "lets it draw, is hidden from it.",
        CHANNEL_FIX,
    )


def test_channel_permissions_follow_discords_order() -> None:
    """@everyone's overwrite, then the roles' (allow wins over deny among roles), then the member's."""
    from egaku.doctor.discord_api import Overwrite

    base = P(view_channel=True, send_messages=True, attach_files=True).value
    send, attach, view = P(send_messages=True).value, P(attach_files=True).value, P(view_channel=True).value
    overwrites = [
        Overwrite(id=1, type=0, deny=send | attach),  # @everyone (the server's id)
        Overwrite(id=5, type=0, deny=attach),
        Overwrite(id=6, type=0, allow=attach),
        Overwrite(id=9, type=1, allow=send),
    ]
    assert channel_permissions(base, 1, 9, [5, 6], overwrites) == view | send | attach
    assert channel_permissions(base, 1, 8, [5], overwrites) == view
    assert channel_permissions(base, 1, 8, [], [Overwrite(id=1, type=0, deny=view)]) == 0
    admin = P(administrator=True).value
    assert channel_permissions(admin, 1, 8, [], [Overwrite(id=1, type=0, deny=view)]) == P.all().value


async def test_a_rate_limit_is_waited_out_once_when_short(
    fake_discord: FakeDiscord, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    limited = {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}
    fake_discord.faults.append(Fault("GET", "/users/@me", 429, limited))
    findings = await check_discord(session, config_for(fake_discord, tmp_path), ENV)
    assert findings[0] == TOKEN_OK
    assert [r.path for r in fake_discord.requests[:2]] == ["/api/v10/users/@me", "/api/v10/users/@me"]
    fake_discord.faults.append(Fault("GET", "/users/@me", 429, {**limited, "retry_after": 60.0}))
    findings = await check_discord(session, config_for(fake_discord, tmp_path), ENV)
    assert findings[0] == Finding(
        "discord.token", "fail", "Discord rate-limited GET /users/@me.", "Run egaku doctor again in a minute."
    )
