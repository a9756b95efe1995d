"""Settings persist in SQLite, and repeat reads are answered from memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tools.stores.preferences import GuildPolicy, Preferences, UserPrefs


async def test_settings_persist_and_repeat_reads_skip_the_database(tmp_path: Path) -> None:
    path = tmp_path / "egaku.db"
    store = await Preferences.open(path)
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    assert await store.user("20") == UserPrefs()  # unset: defaults, one SELECT
    assert await store.user("20") == UserPrefs()  # cached, even the "unset" answer
    assert len([s for s in statements if s.startswith("SELECT")]) == 1
    await store.set_user("20", UserPrefs(aspect="16:9", raw=True))
    await store.set_guild("7", GuildPolicy(nsfw=True, channels=["5"]))
    selects = len([s for s in statements if s.startswith("SELECT")])
    assert await store.user("20") == UserPrefs(aspect="16:9", raw=True)  # the write replaced the cached value
    assert (await store.guild("7")).channels == ["5"]
    assert len([s for s in statements if s.startswith("SELECT")]) == selects  # both from memory
    await store.close()
    reopened = await Preferences.open(path)
    assert await reopened.user("20") == UserPrefs(aspect="16:9", raw=True)
    assert await reopened.guild("7") == GuildPolicy(nsfw=True, channels=["5"])
    assert await reopened.guild(None) == GuildPolicy()  # DMs: defaults
    await reopened.close()


async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    store = await Preferences.open(tmp_path / "egaku.db")
    store._cache_size = 3
    for user in range(10):
        await store.user(str(user))
    assert len(store._cache) == 3
    await store.close()


async def test_a_burst_of_reads_for_one_key_shares_one_query(tmp_path: Path) -> None:
    store = await Preferences.open(tmp_path / "egaku.db")
    await store.set_guild("7", GuildPolicy(max_jobs=3))
    store._cache.clear()
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    policies = await asyncio.gather(*(store.guild("7") for _ in range(50)))
    assert {p.max_jobs for p in policies} == {3}
    assert len([s for s in statements if s.startswith("SELECT")]) == 1
    assert store._loading == {}
    await store.close()
