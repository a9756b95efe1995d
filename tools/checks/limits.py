"""Caps on image jobs per user, per guild and in total, so that nobody can monopolise the GPU.

A user has at most `per_user_running` jobs drawing and `per_user_queued` more
waiting; a guild at most `per_guild` jobs in flight; the bot at most
`total` in flight. Past a cap the job is refused at once with a clear message,
and a full bot says roughly how long to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from egaku.config import LimitsSettings
from egaku.errors import TooBusy
from egaku.i18n import _, n_


@dataclass
class _Counts:
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    guilds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: int = 0


class JobLimiter:
    """Admits, queues or refuses image jobs."""

    def __init__(self, settings: LimitsSettings) -> None:
        self._settings = settings
        self._counts = _Counts()
        self._running: dict[str, asyncio.Semaphore] = {}
        self._recent_s = 10.0  # a moving average of job time, for the wait estimate

    @contextlib.asynccontextmanager
    async def slot(self, user: str, guild: str | None, guild_cap: int | None = None) -> AsyncIterator[None]:
        """Hold a place for one job; raises TooBusy when a cap is reached."""
        s, counts = self._settings, self._counts
        if counts.in_flight[user] >= s.per_user_running + s.per_user_queued:
            raise TooBusy(
                n_(
                    "You already have {count} picture on the way. Please wait for it before asking for more.",
                    "You already have {count} pictures on the way. Please wait for them before asking for more.",
                    counts.in_flight[user],
                )
            )
        if guild is not None and counts.guilds[guild] >= (guild_cap or s.per_guild):
            raise TooBusy(_("This server has a lot of pictures on the way right now. Please try again in a moment."))
        if counts.total >= s.total:
            wait = max(5, round(self._recent_s * counts.total / max(1, s.per_user_running)))
            raise TooBusy(_("I'm very busy right now. Please try again in about {wait} s.", wait=wait))
        counts.in_flight[user] += 1
        counts.total += 1
        if guild is not None:
            counts.guilds[guild] += 1
        running = self._running.setdefault(user, asyncio.Semaphore(s.per_user_running))
        try:
            async with running:
                started = time.monotonic()
                yield
                self._recent_s = 0.8 * self._recent_s + 0.2 * (time.monotonic() - started)
        finally:
            counts.in_flight[user] -= 1
            counts.total -= 1
            if guild is not None:
                counts.guilds[guild] -= 1
