"""Running the Discord bot until it is stopped."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import discord
import yarl
from discord.gateway import DiscordWebSocket

from bot.client import EgakuBot
from bot.services import BotServices
from egaku.config import DiscordSettings

log = logging.getLogger(__name__)

INTENT_HELP = (
    "Discord refused the Message Content intent (close code 4014). Enable it in the Developer "
    "Portal: your application → Bot → Privileged Gateway Intents → Message Content Intent. "
    "Continuing without it: slash commands, mentions, replies and DMs still work."
)


def point_at(settings: DiscordSettings) -> None:
    """Aim discord.py at the configured REST and gateway URLs (Discord's, or a compatible server).

    discord.py keeps these as class attributes, so this is process-wide by design.
    """
    discord.http.Route.BASE = settings.api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def upload_hosts(settings: DiscordSettings) -> frozenset[str]:
    """Hosts besides Discord's CDN that attachments may come from: a self-hosted server's own."""
    host = urlsplit(settings.api_base).hostname
    return frozenset() if host in (None, "discord.com") else frozenset({host})


async def run_bot(services: BotServices, settings: DiscordSettings, token: str) -> None:
    """Log in and serve; degrade once to no message content if the intent is refused."""
    point_at(settings)
    message_content = settings.message_content_intent
    while True:
        bot = EgakuBot(services, settings, message_content=message_content)
        try:
            async with bot:
                await bot.start(token)
            return
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.error(INTENT_HELP)
            message_content = False
        except discord.LoginFailure as exc:
            raise SystemExit(f"Discord rejected the bot token ({settings.token_env}): {exc}") from exc
