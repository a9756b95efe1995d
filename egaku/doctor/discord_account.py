"""The bot's Discord account: is the token valid, and do the application's intents match the config."""

from __future__ import annotations

import discord

from egaku.config import DiscordSettings
from egaku.doctor.discord_api import Application, BotUser, DiscordAPI, parse
from egaku.doctor.findings import Finding, fail, ok, warn
from egaku.doctor.http import Answer

PORTAL = "Developer Portal (discord.com/developers/applications) → your application"
# Past this many servers an unverified bot keeps the Message Content intent only with Discord's approval.
VERIFICATION_SERVERS = 100
VERIFICATION_WARN_AT = 75


def no_token(token_env: str) -> Finding:
    """The finding when the token's environment variable is unset."""
    return fail(
        "discord.token",
        f"No Discord token: the environment variable {token_env} is not set.",
        f"{PORTAL} → Bot → Reset Token, then set {token_env} to the new token (in Docker, the "
        "discord_token secret; see the README's Run with Docker).",
    )


def unreadable(check: str, what: str, answer: Answer, api: DiscordAPI) -> Finding:
    """A Discord request that got no usable answer."""
    if not answer.answered:
        return fail(
            check,
            f"Discord's API at {api.base} did not answer {what}: {answer.problem}.",
            "Check this host's network, DNS and proxy (and discord.api_base, if you changed it).",
        )
    if answer.status == 429:
        return fail(check, f"Discord rate-limited {what}.", "Run egaku doctor again in a minute.")
    detail = f": {answer.server_message()}" if answer.server_message() else ""
    return fail(
        check,
        f"Discord answered {what} with {answer.status}{detail}.",
        "If this persists, check discord.api_base and Discord's status page.",
    )


async def check_token(api: DiscordAPI, token_env: str) -> tuple[Finding, BotUser | None]:
    """GET /users/@me: the token logs in, and as a bot."""
    answer = await api.get("/users/@me")
    if answer.status == 401:
        message = f"Discord refused the token in {token_env} (401 Unauthorized)."
        fix = (
            f"{PORTAL} → Bot → Reset Token, then set {token_env} to the new token. It is the bot's token, "
            "not the client secret or the public key."
        )
        return fail("discord.token", message, fix), None
    user = parse(BotUser, answer) if answer.status == 200 else None
    if user is None:
        return unreadable("discord.token", "GET /users/@me", answer, api), None
    if not user.bot:
        message = f"The token in {token_env} belongs to the user account {user.username}, not to a bot."
        fix = f"Use the token from {PORTAL} → Bot. Running a user account as a bot breaks Discord's terms."
        return fail("discord.token", message, fix), None
    message = f"The token in {token_env} is valid: it logs in as the bot {user.username} (id {user.id})."
    return ok("discord.token", message), user


async def check_intents(api: DiscordAPI, settings: DiscordSettings) -> tuple[Finding, Application | None]:
    """GET /oauth2/applications/@me: the Message Content intent in the portal against the config."""
    answer = await api.get("/oauth2/applications/@me")
    app = parse(Application, answer) if answer.status == 200 else None
    if app is None:
        return unreadable("discord.intents", "GET /oauth2/applications/@me", answer, api), None
    flags = discord.ApplicationFlags._from_value(app.flags)
    enabled = flags.gateway_message_content or flags.gateway_message_content_limited
    reads_only = "the bot reads only messages that mention it, DMs and slash commands"
    if settings.message_content_intent and not enabled:
        message = (
            "The config asks for the Message Content intent (discord.message_content_intent = true), but it is "
            "off in the Developer Portal. Discord refuses it at login (close code 4014) and egaku carries on "
            f"without it: {reads_only}; replies that do not mention it go unread."
        )
        fix = (
            f"{PORTAL} → Bot → Privileged Gateway Intents → turn on Message Content Intent. Or set "
            "discord.message_content_intent = false."
        )
        return fail("discord.intents", message, fix), app
    if not settings.message_content_intent:
        where = "on in the Developer Portal but off" if enabled else "off in the Developer Portal and"
        return ok("discord.intents", f"The Message Content intent is {where} in the config: {reads_only}."), app
    count = app.approximate_guild_count or 0
    if flags.gateway_message_content_limited and not flags.gateway_message_content and count >= VERIFICATION_WARN_AT:
        message = (
            f"The Message Content intent is on only while the bot is in fewer than {VERIFICATION_SERVERS} servers; "
            f"it is in {count}. Past {VERIFICATION_SERVERS}, Discord requires verification and approval of the intent."
        )
        fix = (
            f"{PORTAL} → App Verification: verify the bot and apply for the Message Content intent, or set "
            "discord.message_content_intent = false before then."
        )
        return warn("discord.intents", message, fix), app
    message = (
        "The Message Content intent is on in the Developer Portal and in the config: the bot also reads "
        "replies that do not mention it."
    )
    return ok("discord.intents", message), app
