"""What the bot's extensions need, injected once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from agent.service import Agent
from egaku.i18n import Catalogs
from tools.backends.base import ImageBackend
from tools.service.images import ImageService
from tools.service.teaching import ConceptService
from tools.stores.history import History
from tools.stores.preferences import Preferences


@dataclass(frozen=True)
class BotServices:
    """What the extensions need, injected once."""

    agent: Agent
    images: ImageService  # the image service the buttons and /imagine raw call (the agent's tools share it)
    history: History | None = None
    session: aiohttp.ClientSession | None = None  # the process's one session, for attachments
    upload_hosts: frozenset[str] = frozenset()  # hosts besides Discord's CDN that attachments may come from
    models: tuple[str, ...] = ()  # the worker presets users may pick
    worker: ImageBackend | None = None  # for cancelling jobs and /describe
    status_after_s: float = 2.0  # jobs shorter than this get no status message
    status_edit_s: float = 1.5  # at most one status edit per this long (Discord allows ~5 per 5 s)
    preferences: Preferences | None = None  # /settings
    concepts: ConceptService | None = None  # /teach and /concepts
    catalogs: Catalogs = field(default_factory=Catalogs.load)  # the languages the bot speaks (bot.language)
