"""An image's parents, in order, each with its role: the `parents` table beside the history's `generations`.

An edit has one parent (the picture edited); a reference edit has the edited picture and the
pictures it took from; a blend or a reference drawing has only references (or styles).
`generations.parent_id` keeps the first parent for older readers; this table keeps them all.
A history written before the table existed gains it when opened: each older edit's one parent
becomes its "edited" picture (once, marked by SQLite's `user_version`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import aiosqlite

from tools.pictures import Parent, ParentRole

LINEAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS parents (
    child TEXT NOT NULL,
    position INTEGER NOT NULL,
    parent TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (child, position)
);
CREATE INDEX IF NOT EXISTS parents_parent ON parents (parent);
"""
# The history's `user_version` once every older edit's parent is in `parents`.
LINEAGE_VERSION = 1
_CHUNK = 500  # ids per query: under SQLite's oldest limit on bound variables (999)


async def open_lineage(db: aiosqlite.Connection) -> None:
    """Create the table, and copy in the parents of a history written before it (the caller commits)."""
    await db.executescript(LINEAGE_SCHEMA)
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    if row is not None and row[0] >= LINEAGE_VERSION:
        return
    await db.execute(
        "INSERT OR IGNORE INTO parents (child, position, parent, role) "
        "SELECT id, 0, parent_id, 'edited' FROM generations WHERE parent_id IS NOT NULL"
    )
    await db.execute(f"PRAGMA user_version = {LINEAGE_VERSION}")


def lineage(parent_id: str | None, parents: Sequence[Parent]) -> tuple[str | None, tuple[Parent, ...]]:
    """The first parent and all of them, from either spelling: one parent alone is the picture edited."""
    if parents:
        return parents[0].id, tuple(parents)
    return parent_id, (Parent(parent_id, "edited"),) if parent_id else ()


async def write_parents(db: aiosqlite.Connection, child: str, parents: Sequence[Parent]) -> None:
    """Record a new image's parents, in order (the caller commits)."""
    rows = [(child, position, p.id, p.role) for position, p in enumerate(parents)]
    await db.executemany("INSERT INTO parents (child, position, parent, role) VALUES (?, ?, ?, ?)", rows)


async def parents_of(db: aiosqlite.Connection, ids: Iterable[str]) -> dict[str, tuple[Parent, ...]]:
    """Each image's parents, in order; an image with none is left out."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, list[Parent]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        sql = (
            f"SELECT child, parent, role FROM parents WHERE child IN ({','.join('?' * len(chunk))}) "
            "ORDER BY child, position"
        )
        async with db.execute(sql, chunk) as cur:
            for child, parent, role in await cur.fetchall():
                found.setdefault(child, []).append(Parent(parent, cast(ParentRole, role)))
    return {child: tuple(parents) for child, parents in found.items()}
