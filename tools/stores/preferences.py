"""/settings: per-user preferences and per-guild policy, persisted in SQLite."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

import aiosqlite
from pydantic import BaseModel, ConfigDict, Field

from worker.protocol import MAX_BEST_OF, Aspect, Style

SCHEMA = """
CREATE TABLE IF NOT EXISTS user_prefs (user_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS guild_policy (guild_id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


class UserPrefs(BaseModel):
    """What a user set with /settings me."""

    model_config = ConfigDict(extra="ignore")

    aspect: Aspect | None = None
    style: Style | None = None
    raw: bool = False
    language: str | None = Field(default=None, max_length=40)


class GuildPolicy(BaseModel):
    """What a server's administrators set with /settings server."""

    model_config = ConfigDict(extra="ignore")

    nsfw: bool = False  # NSFW is allowed only where this is on AND the channel is marked NSFW
    channels: list[str] = Field(default_factory=list)  # where the bot draws; empty: everywhere
    max_jobs: int | None = Field(default=None, ge=1, le=1024)  # images in flight for the whole server
    model: str | None = Field(default=None, max_length=128)
    best_of: int | None = Field(default=None, ge=1, le=MAX_BEST_OF)  # candidates per picture; None: the bot's

    def allows(self, channel_id: int) -> bool:
        """Whether the bot may draw in this channel."""
        return not self.channels or str(channel_id) in self.channels


class Preferences:
    """The settings store. Open with `await Preferences.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, cache_size: int = 10_000) -> None:
        self._db = db
        # Slash commands read settings before they defer (3 s limit): answer repeat reads from
        # memory. This process is the only writer, and every write replaces the cached body.
        self._cache: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self._cache_size = cache_size
        # A burst of commands from one server asks for its policy at once: one read serves all.
        self._loading: dict[tuple[str, str], asyncio.Future[str | None]] = {}

    @classmethod
    async def open(cls, path: Path) -> Preferences:
        """Open (and create) the settings tables."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        """Close the database."""
        await self._db.close()

    async def _get(self, table: str, key_column: str, key: str) -> str | None:
        if (table, key) in self._cache:
            self._cache.move_to_end((table, key))
            return self._cache[(table, key)]
        loading = self._loading.get((table, key))
        if loading is None:
            loading = asyncio.ensure_future(self._read(table, key_column, key))
            self._loading[(table, key)] = loading
            loading.add_done_callback(lambda _: self._loading.pop((table, key), None))
        return await asyncio.shield(loading)  # one waiter giving up does not cancel the others' read

    async def _read(self, table: str, key_column: str, key: str) -> str | None:
        async with self._db.execute(f"SELECT body FROM {table} WHERE {key_column} = ?", (key,)) as cur:
            row = await cur.fetchone()
        body = str(row[0]) if row else None
        self._remember(table, key, body)
        return body

    def _remember(self, table: str, key: str, body: str | None) -> None:
        self._cache[(table, key)] = body
        self._cache.move_to_end((table, key))
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _put(self, table: str, key_column: str, key: str, body: str) -> None:
        await self._db.execute(
            f"INSERT INTO {table} ({key_column}, body) VALUES (?, ?) "
            f"ON CONFLICT({key_column}) DO UPDATE SET body = excluded.body",
            (key, body),
        )
        await self._db.commit()
        self._remember(table, key, body)

    async def user(self, user_id: str) -> UserPrefs:
        """A user's preferences (defaults when unset)."""
        body = await self._get("user_prefs", "user_id", user_id)
        return UserPrefs.model_validate_json(body) if body else UserPrefs()

    async def set_user(self, user_id: str, prefs: UserPrefs) -> None:
        """Save a user's preferences."""
        await self._put("user_prefs", "user_id", user_id, prefs.model_dump_json())

    async def guild(self, guild_id: str | None) -> GuildPolicy:
        """A guild's policy (defaults when unset, and for DMs)."""
        body = await self._get("guild_policy", "guild_id", guild_id) if guild_id else None
        return GuildPolicy.model_validate_json(body) if body else GuildPolicy()

    async def set_guild(self, guild_id: str, policy: GuildPolicy) -> None:
        """Save a guild's policy."""
        await self._put("guild_policy", "guild_id", guild_id, policy.model_dump_json())

    async def guilds(self) -> dict[str, GuildPolicy]:
        """Every server's policy that was ever set, by server id (for `egaku doctor`)."""
        async with self._db.execute("SELECT guild_id, body FROM guild_policy") as cur:
            rows = await cur.fetchall()
        return {str(guild_id): GuildPolicy.model_validate_json(body) for guild_id, body in rows}
