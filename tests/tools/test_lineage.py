"""An image keeps all its parents, in order, with their roles; a history from before the lineage table migrates."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from tests.tools.test_history import add
from tools.pictures import Parent
from tools.stores.history import History

# The history's tables as the release before the lineage table wrote them (frozen here on purpose).
OLD_SCHEMA = """
CREATE TABLE generations (
    id TEXT PRIMARY KEY, conversation TEXT NOT NULL, user_id TEXT NOT NULL, guild_id TEXT, channel_id TEXT,
    message_id TEXT, user_words TEXT NOT NULL, prompt TEXT NOT NULL, negative_prompt TEXT, seed INTEGER NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, steps INTEGER NOT NULL, model TEXT NOT NULL, parent_id TEXT,
    kind TEXT NOT NULL, file TEXT NOT NULL, created REAL NOT NULL, caption TEXT, prompt_language TEXT, score REAL,
    candidate_of TEXT, nsfw INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX generations_scope ON generations (conversation, user_id, created);
CREATE INDEX generations_message ON generations (message_id);
CREATE TABLE audit (
    at REAL NOT NULL, guild_id TEXT, channel_id TEXT, user_id TEXT NOT NULL, source_id TEXT, user_words TEXT NOT NULL,
    final_prompt TEXT, parameters TEXT NOT NULL, verdict TEXT NOT NULL, outcome TEXT NOT NULL, seconds REAL NOT NULL,
    image_ids TEXT NOT NULL
);
"""
OLD_ROW = "INSERT INTO generations VALUES (?, 'c', 'alice', NULL, NULL, NULL, ?, ?, NULL, 7, 64, 64, 2, 'tiny', ?, ?, 'x.png', ?, NULL, NULL, NULL, NULL, 0)"  # noqa: E501


async def test_parents_are_kept_in_order_with_their_roles_across_a_restart(tmp_path: Path) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    king = await add(history, "alice", "a squirrel king on a mossy throne")
    cat = await add(history, "alice", "(uploaded image cat.png)", kind="upload")
    hat = await add(history, "alice", "(uploaded image hat.png)", kind="upload")
    parents = (Parent(king.id, "edited"), Parent(cat.id, "reference"), Parent(hat.id, "style"))
    both = await add(history, "alice", "the king with the cat from picture 2", kind="reference", parents=parents)
    blend = await add(history, "alice", "picture 1 and picture 2 blended", kind="blend",
                      parents=(Parent(cat.id, "reference"), Parent(hat.id, "reference")))  # fmt: skip
    night = await add(history, "alice", "the king at night", kind="regenerate", parent_id=king.id)
    assert (both.parent_id, both.parents) == (king.id, parents)  # the first parent stays `parent_id` too
    await history.close()

    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")  # a restart
    assert (await history.get(both.id)).parents == parents  # type: ignore[union-attr]
    mine = {g.id: g for g in await history.mine("c", "alice")}
    assert mine[blend.id].parents == (Parent(cat.id, "reference"), Parent(hat.id, "reference"))
    assert mine[night.id].parents == (Parent(king.id, "edited"),)  # one parent alone is the picture edited
    assert mine[king.id].parents == () and mine[king.id].parent_id is None
    # The model's note names them by role.
    assert (
        mine[both.id]
        .line(4)
        .startswith(
            f"#4 id={both.id} (reference, edit of {king.id}, from {cat.id}, in the style of {hat.id}): the king"
        )
    )
    assert mine[blend.id].line(5).startswith(f"#5 id={blend.id} (blend, from {cat.id}, {hat.id}): picture 1")
    assert mine[night.id].line(6).startswith(f"#6 id={night.id} (regenerate, edit of {king.id}): the king")
    await history.close()


async def test_a_history_written_before_the_lineage_table_gains_it_with_each_edits_parent(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "h.sqlite") as db:
        await db.executescript(OLD_SCHEMA)
        await db.executemany(OLD_ROW, [
            ("king", "a squirrel king", "a squirrel king", None, "generate", 1.0),
            ("nite", "at night", "a squirrel king at night", "king", "regenerate", 2.0),
            ("gold", "a gold crown", "a squirrel king with a gold crown", "nite", "subtle", 3.0),
        ])  # fmt: skip
        await db.commit()
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    found = {g.id: (g.parent_id, g.parents) for g in await history.mine("c", "alice")}
    assert found == {
        "king": (None, ()),
        "nite": ("king", (Parent("king", "edited"),)),
        "gold": ("nite", (Parent("nite", "edited"),)),
    }
    newer = await add(history, "alice", "gold and night", kind="reference",
                      parents=(Parent("gold", "edited"), Parent("king", "reference")))  # fmt: skip
    await history.close()

    # Opened again, the copy is not made twice, and the newer image keeps its own parents.
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    assert (await history.get("gold")).parents == (Parent("nite", "edited"),)  # type: ignore[union-attr]
    assert (await history.get(newer.id)).parents == (Parent("gold", "edited"), Parent("king", "reference"))  # type: ignore[union-attr]
    await history.close()
    async with aiosqlite.connect(tmp_path / "h.sqlite") as db, db.execute("SELECT COUNT(*) FROM parents") as cur:
        assert await cur.fetchone() == (4,)
