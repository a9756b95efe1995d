"""Discord's REST API as the doctor reads it: a few GETs with the bot token, and the objects they return."""

from __future__ import annotations

import asyncio
from importlib import metadata
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from egaku.doctor.http import Answer, call

MAX_RETRY_WAIT_S = 5.0  # a 429 asking for a longer wait is reported, not waited out


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BotUser(_Object):
    """GET /users/@me."""

    id: int
    username: str
    bot: bool = False


class Application(_Object):
    """GET /oauth2/applications/@me."""

    id: int
    name: str
    flags: int = 0
    approximate_guild_count: int | None = None


class PartialGuild(_Object):
    """One entry of GET /users/@me/guilds; `permissions` are the bot's in that server."""

    id: int
    name: str
    permissions: int = 0


class Member(_Object):
    """GET /guilds/{id}/members/{user id}."""

    roles: list[int] = Field(default_factory=list)


class Overwrite(_Object):
    """A channel's permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


class Channel(_Object):
    """One entry of GET /guilds/{id}/channels."""

    id: int
    name: str = ""
    type: int
    permission_overwrites: list[Overwrite] = Field(default_factory=list)


class CommandOption(_Object):
    """An option (or subcommand) of an application command."""

    name: str
    type: int
    options: list[CommandOption] = Field(default_factory=list)


class Command(_Object):
    """An application command as Discord lists it."""

    name: str
    type: int = 1
    options: list[CommandOption] = Field(default_factory=list)


class DiscordAPI:
    """Authenticated GETs against `base` (Discord's, or a compatible server's, or a test's fake)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str, timeout_s: float = 15.0) -> None:
        self._session = session
        self._base = base.rstrip("/")
        # Discord asks every bot for a User-Agent of this shape.
        agent = f"DiscordBot (https://github.com/egaku, {_version()}) egaku-doctor"
        self._headers = {"Authorization": f"Bot {token}", "User-Agent": agent}
        self._timeout_s = timeout_s

    @property
    def base(self) -> str:
        """The REST base URL."""
        return self._base

    async def get(self, path: str) -> Answer:
        """GET a path; a 429 with a short wait is waited out once."""
        answer = await call(self._session, "GET", self._base + path, headers=self._headers, timeout_s=self._timeout_s)
        wait = _retry_after(answer)
        if wait is not None and wait <= MAX_RETRY_WAIT_S:
            await asyncio.sleep(wait)
            answer = await call(
                self._session, "GET", self._base + path, headers=self._headers, timeout_s=self._timeout_s
            )
        return answer


def _retry_after(answer: Answer) -> float | None:
    if answer.status != 429:
        return None
    value: Any = answer.body.get("retry_after") if isinstance(answer.body, dict) else None
    value = value if value is not None else answer.headers.get("Retry-After")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


M = TypeVar("M", bound=BaseModel)


def _version() -> str:
    try:
        return metadata.version("egaku")
    except metadata.PackageNotFoundError:
        return "0"


def parse(model: type[M], answer: Answer) -> M | None:
    """The answer's body as `model`, or None when it is not one."""
    try:
        return model.model_validate(answer.body)
    except ValidationError:
        return None


def parse_list(model: type[M], answer: Answer) -> list[M] | None:
    """The answer's body as a list of `model`, or None when it is not one."""
    if not isinstance(answer.body, list):
        return None
    try:
        return [model.model_validate(item) for item in answer.body]
    except ValidationError:
        return None
