"""Caps on image jobs per user, per server and in total, and each server's line.

A user has at most `per_user_running` jobs at the worker and `per_user_queued` more waiting;
past that, a new one is refused at once. A server has at most `per_guild` jobs at the worker
(its own /settings cap wins), the bot at most `total`. A job past its server's or the bot's
cap waits in its server's line, in order of arrival, and hears its place as it moves up; a
user's second job waits behind their first while other people's pass it, so per-user fairness
holds. Only a full line (`line` jobs waiting in that server) refuses, saying when to come back.
A direct message has no server: each user's DMs are a line of their own, bounded by that user's
caps, so the crowd of all DMs waiting for the bot's total cap is never refused as one full line.
A job waiting in line can be cancelled by its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from egaku.config import LimitsSettings
from egaku.errors import JobCancelled, TooBusy
from egaku.i18n import Text, _, n_
from tools.service.requests import Waiting

OnWait = Callable[[Waiting], Awaitable[None]]


def come_back_in(seconds: float) -> Text:
    """A wait in words a person reads: "40 s", "3 min"."""
    if seconds < 90:
        return _("{seconds} s", seconds=max(5, round(seconds)))
    return _("{minutes} min", minutes=math.ceil(seconds / 60))


@dataclass(eq=False)
class _Ticket:
    """One job's place: waiting in its server's line, then holding a slot at the worker."""

    job_id: str | None
    user: str
    guild: str | None
    cap: int
    admitted: asyncio.Future[None]
    line: str = ""  # the line it waits in: its server's, or its user's own for a DM
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    state: Literal["waiting", "running", "gone"] = "waiting"


class JobLimiter:
    """Admits image jobs within the caps, keeps each server's line, and refuses past its bound."""

    def __init__(self, settings: LimitsSettings) -> None:
        self._settings = settings
        self._waiting: list[_Ticket] = []  # every server's line, in order of arrival
        self._held: dict[str, int] = defaultdict(int)  # a user's jobs, running or waiting
        self._users: dict[str, int] = defaultdict(int)  # jobs at the worker, by user
        self._guilds: dict[str | None, int] = defaultdict(int)  # ...by server
        self._total = 0
        self._recent_s = 10.0  # a moving average of a job's time at the worker, for the wait estimates

    @contextlib.asynccontextmanager
    async def slot(
        self,
        user: str,
        guild: str | None,
        guild_cap: int | None = None,
        *,
        job_id: str | None = None,
        on_wait: OnWait | None = None,
    ) -> AsyncIterator[None]:
        """Hold a slot for one job, waiting in line for it if need be; TooBusy past a cap or a full line."""
        s = self._settings
        if self._held[user] >= s.per_user_running + s.per_user_queued:
            raise TooBusy(
                n_(
                    "You already have {count} picture on the way. Please wait for it before asking for more.",
                    "You already have {count} pictures on the way. Please wait for them before asking for more.",
                    self._held[user],
                )
            )
        line = f"guild:{guild}" if guild is not None else f"dm:{user}"
        admitted = asyncio.get_running_loop().create_future()
        ticket = _Ticket(job_id, user, guild, guild_cap or s.per_guild, admitted, line=line)
        self._waiting.append(ticket)
        self._admit()
        if ticket.state == "waiting" and self._in_line(line) > s.line:
            self._waiting.remove(ticket)
            waiting = self._in_line(line)
            raise TooBusy(
                n_(
                    "This server has {count} picture waiting in line right now. Please try again in about {wait}.",
                    "This server has {count} pictures waiting in line right now. Please try again in about {wait}.",
                    waiting,
                    wait=come_back_in(self._eta_s(waiting, ticket.cap)),
                )
            )
        self._held[user] += 1
        try:
            await self._wait(ticket, on_wait)
            started = time.monotonic()
            yield
            self._recent_s = 0.8 * self._recent_s + 0.2 * (time.monotonic() - started)
        finally:
            self._held[user] -= 1
            self._leave(ticket)

    def cancel(self, job_id: str) -> bool:
        """Take a job out of its line (its waiter raises JobCancelled); False when no such job waits."""
        ticket = next((t for t in self._waiting if t.job_id == job_id), None)
        if ticket is None:
            return False
        self._waiting.remove(ticket)
        ticket.state = "gone"
        ticket.admitted.set_exception(JobCancelled(f"job {job_id} cancelled in line"))
        self._moved()
        return True

    def place(self, job_id: str) -> int | None:
        """A waiting job's place in its server's line (1: next), or None."""
        ticket = next((t for t in self._waiting if t.job_id == job_id), None)
        return self._place(ticket) if ticket is not None else None

    async def _wait(self, ticket: _Ticket, on_wait: OnWait | None) -> None:
        """Until the ticket is admitted, telling `on_wait` each new place."""
        told: int | None = None
        while ticket.state == "waiting":
            ticket.moved.clear()  # before the place is read: a move during on_wait wakes the wait below
            place = self._place(ticket)
            if on_wait is not None and place != told:
                told = place
                await on_wait(Waiting("line", place, self._eta_s(place, ticket.cap)))
            if ticket.state != "waiting":
                break
            moved = asyncio.ensure_future(ticket.moved.wait())
            waits: set[asyncio.Future[Any]] = {ticket.admitted, moved}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()
        await ticket.admitted  # raises JobCancelled for a ticket cancelled in line

    def _admit(self) -> None:
        """Let every waiting job in that may go now, first come first; tell the rest their places may have moved."""
        s = self._settings
        for ticket in list(self._waiting):
            user_free = self._users[ticket.user] < s.per_user_running
            guild_free = ticket.guild is None or self._guilds[ticket.guild] < ticket.cap
            if user_free and guild_free and self._total < s.total:
                self._waiting.remove(ticket)
                ticket.state = "running"
                self._users[ticket.user] += 1
                self._guilds[ticket.guild] += 1
                self._total += 1
                ticket.admitted.set_result(None)
        self._moved()

    def _leave(self, ticket: _Ticket) -> None:
        """A job ends (or stops waiting): free its slot or its place, and let the next ones in."""
        if ticket.state == "running":
            self._users[ticket.user] -= 1
            self._guilds[ticket.guild] -= 1
            self._total -= 1
        elif ticket.state == "waiting":
            self._waiting.remove(ticket)
        ticket.state = "gone"
        self._admit()

    def _moved(self) -> None:
        for ticket in self._waiting:
            ticket.moved.set()

    def _in_line(self, line: str) -> int:
        return sum(1 for t in self._waiting if t.line == line)

    def _place(self, ticket: _Ticket) -> int:
        return 1 + sum(1 for t in self._waiting[: self._waiting.index(ticket)] if t.line == ticket.line)

    def _eta_s(self, place: int, cap: int) -> float:
        """About how long until a job at `place` in a line served `cap` at a time is done."""
        return self._recent_s * (1 + math.ceil(place / max(1, cap)))
