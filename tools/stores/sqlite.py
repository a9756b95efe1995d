"""Opening a store's SQLite database."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_sqlite(path: Path, schema: str) -> aiosqlite.Connection:
    """A store's database, its folder and tables created when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path)
    await db.executescript(schema)
    await db.commit()
    return db
