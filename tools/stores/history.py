"""Generation history: every image egaku made or was given, in SQLite, files by content hash.

The agent refers to earlier images through this: "last", a short id, the message
a user replied to, an ordinal ("the second one"), or words matched against the
earlier prompts ("the squirrel-king one"). It survives restarts, and /reset does
not touch it.

One person's pictures stay theirs: every way of reaching a picture (an id, an ordinal,
words, a reply, a button) goes through `Viewer.may_see`. A picture is reachable by its
owner, and by anyone in the conversation (channel, thread or DM) it was posted in; an
upload made in a DM stays in that DM; a picture made where NSFW is allowed is reachable
only where NSFW is allowed. A refusal never says whether the picture exists elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from egaku.errors import UnknownImage
from tools.pictures import Parent, Picture
from tools.stores.files import write_once
from tools.stores.lineage import lineage, open_lineage, parents_of, write_parents
from tools.stores.sqlite import open_sqlite

_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: ids are read aloud and retyped
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5,
}  # fmt: skip
_LAST = {"", "last", "latest", "previous", "it", "that", "this", "that one", "this one", "the last one", "前", "さっき"}
_STOP = {"the", "a", "an", "one", "image", "picture", "with", "of", "and", "in", "on", "that", "this", "pic"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    user_id TEXT NOT NULL,
    guild_id TEXT,
    channel_id TEXT,
    message_id TEXT,
    user_words TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT,
    seed INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    model TEXT NOT NULL,
    parent_id TEXT,
    kind TEXT NOT NULL,
    file TEXT NOT NULL,
    created REAL NOT NULL,
    caption TEXT,
    prompt_language TEXT,
    score REAL,
    candidate_of TEXT,
    nsfw INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS generations_scope ON generations (conversation, user_id, created);
CREATE INDEX IF NOT EXISTS generations_message ON generations (message_id);
CREATE TABLE IF NOT EXISTS audit (
    at REAL NOT NULL,
    guild_id TEXT,
    channel_id TEXT,
    user_id TEXT NOT NULL,
    source_id TEXT,
    user_words TEXT NOT NULL,
    final_prompt TEXT,
    parameters TEXT NOT NULL,
    verdict TEXT NOT NULL,
    outcome TEXT NOT NULL,
    seconds REAL NOT NULL,
    image_ids TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_user ON audit (user_id, at);
"""


@dataclass(frozen=True)
class AuditRecord:
    """One image job: who, where, what they said, what was drawn, how it went. Never secrets."""

    user_id: str
    user_words: str
    parameters: str  # JSON of the request fields sent to the worker
    outcome: str  # "ok", or the error class
    seconds: float
    guild_id: str | None = None
    channel_id: str | None = None
    source_id: str | None = None  # the Discord message or interaction id
    final_prompt: str | None = None
    verdict: str = "unchecked"
    image_ids: str = ""
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Generation(Picture):
    """One image in the history: the picture's shape, plus where it lives and who may see it."""

    id: str
    conversation: str
    user_id: str
    file: str
    guild_id: str | None = None
    channel_id: str | None = None
    message_id: str | None = None
    created: float = 0.0
    caption: str | None = None  # what the captioner saw in it (made once, for uploads and edited images)
    prompt_language: str | None = None  # the final prompt's language ("en", "ja"...; tools.checks.languages)
    # best-of-N: the chosen image this candidate lost to; None for the chosen one and for every ordinary image
    candidate_of: str | None = None
    nsfw: bool = False  # made (or uploaded) where NSFW is allowed: reachable only where it is allowed too

    def line(self, number: int) -> str:
        """One line of the compact history the model sees (never pixels)."""
        parent = _made_from(self.parents)
        # Whole up to 200 characters: the shape world's three-object captions (up to ~165) reach the model
        # entire, since its embedded agent edits by rewriting the whole caption.
        prompt = _clip(self.prompt, 200)
        seen = f"; it shows: {_clip(self.caption, 300)}" if self.caption else ""
        return f"#{number} id={self.id} ({self.kind}{parent}): {prompt}{seen}"


# How a picture's lineage reads in the model's note, by the role its parents played.
_MADE_FROM = {"edited": "edit of {}", "reference": "from {}", "style": "in the style of {}"}


def _made_from(parents: tuple[Parent, ...]) -> str:
    """ ", edit of k3m9, from x7pq, r2d2": a picture's parents by role, in the order the roles first appear."""
    grouped: dict[str, list[str]] = {}
    for parent in parents:
        grouped.setdefault(parent.role, []).append(parent.id)
    return "".join(f", {_MADE_FROM[role].format(', '.join(ids))}" for role, ids in grouped.items())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_COLUMNS = (
    "id, conversation, user_id, user_words, prompt, negative_prompt, seed, width, height, steps, model, kind, "
    "file, parent_id, guild_id, channel_id, message_id, created, caption, prompt_language, score, candidate_of, nsfw"
)

# Columns added after the first release, added in place to older history files when opened.
ADDED_COLUMNS = {
    "caption": "TEXT",
    "prompt_language": "TEXT",
    "score": "REAL",
    "candidate_of": "TEXT",
    "nsfw": "INTEGER NOT NULL DEFAULT 0",
}


@dataclass(frozen=True)
class Viewer:
    """Who reaches for a picture, and from where."""

    user_id: str
    conversation: str  # the channel, thread or DM they ask in
    nsfw: bool = False  # NSFW is allowed where they ask
    replied_message_id: str | None = None  # the message they replied to, if any

    def may_see(self, picture: Generation) -> bool:
        """Whether this picture may be shown to, or edited by, this viewer here."""
        if picture.nsfw and not self.nsfw:
            return False
        if picture.conversation == self.conversation:
            return True
        if picture.user_id != self.user_id:
            return False
        return not (picture.kind == "upload" and picture.guild_id is None)  # a DM's upload stays in its DM


class History:
    """The history store. Open with `await History.open(db, images_dir)`; close with `close()`."""

    def __init__(self, db: aiosqlite.Connection, images_dir: Path) -> None:
        self._db = db
        self._images = images_dir

    @classmethod
    async def open(cls, path: Path, images_dir: Path) -> History:
        """Open (and create) the history database."""
        db = await open_sqlite(path, SCHEMA)
        async with db.execute("PRAGMA table_info(generations)") as cur:
            columns = {row[1] for row in await cur.fetchall()}
        for column, kind in ADDED_COLUMNS.items():
            if column not in columns:  # a history written before this column existed
                await db.execute(f"ALTER TABLE generations ADD COLUMN {column} {kind}")
        await db.execute("CREATE INDEX IF NOT EXISTS generations_candidates ON generations (candidate_of)")
        await open_lineage(db)
        await db.commit()
        return cls(db, images_dir)

    async def close(self) -> None:
        """Close the database."""
        await self._db.close()

    # -- writing -----------------------------------------------------------
    def _store(self, png: bytes) -> str:
        digest = hashlib.sha256(png).hexdigest()
        path = write_once(self._images / digest[:2] / f"{digest}.png", png)
        return str(path.relative_to(self._images))

    async def _new_id(self) -> str:
        for length in (4, 5, 6, 8):
            for _ in range(5):
                candidate = "".join(secrets.choice(_ALPHABET) for _ in range(length))
                async with self._db.execute("SELECT 1 FROM generations WHERE id = ?", (candidate,)) as cur:
                    if await cur.fetchone() is None:
                        return candidate
        raise RuntimeError("could not find a free generation id")

    async def add(self, png: bytes, **fields: object) -> Generation:
        """Record an image (its file is stored by content hash) and its parents, in order; return it with its id."""
        stored = await asyncio.to_thread(self._store, png)  # hashing and writing MBs: not on the loop
        parent_id, parents = lineage(fields.pop("parent_id", None), fields.pop("parents", ()))  # type: ignore[arg-type]
        made = {"id": await self._new_id(), "file": stored, "created": time.time(), "parent_id": parent_id}
        record = Generation(**made, parents=parents, **fields)  # type: ignore[arg-type]
        values = [getattr(record, c.strip()) for c in _COLUMNS.split(",")]
        await self._db.execute(f"INSERT INTO generations ({_COLUMNS}) VALUES ({','.join('?' * len(values))})", values)
        await write_parents(self._db, record.id, parents)
        await self._db.commit()
        return record

    async def set_caption(self, generation_id: str, caption: str) -> None:
        """Remember what the captioner saw in an image, so that it is described only once."""
        await self._db.execute("UPDATE generations SET caption = ? WHERE id = ?", (caption, generation_id))
        await self._db.commit()

    async def audit(self, record: AuditRecord) -> None:
        """Append one audit record."""
        columns = [f for f in AuditRecord.__dataclass_fields__]
        values = [getattr(record, c) for c in columns]
        values[columns.index("at")] = record.at or time.time()
        placeholders = ",".join("?" * len(columns))
        await self._db.execute(f"INSERT INTO audit ({','.join(columns)}) VALUES ({placeholders})", values)
        await self._db.commit()

    async def audit_log(self, user_id: str | None = None) -> list[AuditRecord]:
        """Audit records, oldest first (optionally for one user)."""
        columns = list(AuditRecord.__dataclass_fields__)
        where = "WHERE user_id = ?" if user_id else ""
        sql = f"SELECT {','.join(columns)} FROM audit {where} ORDER BY at, rowid"
        async with self._db.execute(sql, (user_id,) if user_id else ()) as cur:
            rows = await cur.fetchall()
        return [AuditRecord(**dict(zip(columns, row, strict=True))) for row in rows]

    async def attach_message(self, ids: list[str], message_id: str) -> None:
        """Remember which Discord message shows these images (for reply-to-edit)."""
        await self._db.executemany("UPDATE generations SET message_id = ? WHERE id = ?", [(message_id, i) for i in ids])
        await self._db.commit()

    # -- reading -----------------------------------------------------------
    async def _query(self, where: str, args: tuple[object, ...]) -> list[Generation]:
        sql = f"SELECT {_COLUMNS} FROM generations WHERE {where}"
        async with self._db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        names = [c.strip() for c in _COLUMNS.split(",")]
        parents = await parents_of(self._db, (row[0] for row in rows))
        found = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            values["nsfw"] = bool(values["nsfw"])
            found.append(Generation(**values, parents=parents.get(values["id"], ())))
        return found

    def png(self, generation: Generation) -> bytes:
        """The image's bytes."""
        return (self._images / generation.file).read_bytes()

    async def get(self, generation_id: str) -> Generation | None:
        """One generation by id."""
        found = await self._query("id = ?", (generation_id,))
        return found[0] if found else None

    async def by_message(self, message_id: str) -> list[Generation]:
        """The images shown by one Discord message."""
        return await self._query("message_id = ? ORDER BY created", (message_id,))

    async def mine(self, conversation: str, user_id: str) -> list[Generation]:
        """This user's images in this conversation, oldest first; best-of candidates that lost are not among them."""
        where = "conversation = ? AND user_id = ? AND candidate_of IS NULL ORDER BY created, rowid"
        return await self._query(where, (conversation, user_id))

    async def candidates(self, generation_id: str) -> list[Generation]:
        """The best-of candidates a chosen image was picked over, best score first (none for other images)."""
        return await self._query("candidate_of = ? ORDER BY score DESC, rowid", (generation_id,))

    async def resolve(self, ref: str, viewer: Viewer) -> Generation:
        """The picture a reference means, among those the viewer may reach here; UnknownImage when none fits."""
        text = " ".join(ref.lower().strip().strip("\"'").split())
        mine = [g for g in await self.mine(viewer.conversation, viewer.user_id) if viewer.may_see(g)]
        replied = viewer.replied_message_id
        if text in ("reply", "replied", "the replied one") or (replied and text in _LAST):
            shown = [g for g in await self.by_message(replied) if viewer.may_see(g)] if replied else []
            if shown:
                return shown[0]
            if text not in _LAST:
                raise UnknownImage("that message has no image of mine")
        if text in _LAST:
            if mine:
                return mine[-1]
            raise UnknownImage("you have no images here yet")
        exact = await self.get(text.lstrip("#"))
        if exact is not None and viewer.may_see(exact):
            return exact
        ordinal = _ordinal(text)
        if ordinal is not None and mine:
            if 1 <= ordinal <= len(mine):
                return mine[ordinal - 1]
            raise UnknownImage(f"you have {len(mine)} images here")
        return _best_match(text, mine)


def _ordinal(text: str) -> int | None:
    """The 1-based position a reference names ("second", "2nd", "#2", "2", "二枚目"), if any."""
    match = re.fullmatch(r"(?:the\s+)?#?(\d{1,3})(?:st|nd|rd|th)?(?:\s+one)?", text)
    if match:
        return int(match.group(1))
    for word, number in _ORDINALS.items():
        if re.search(rf"(?:^|\b){word}(?:\b|$)", text) or (not word.isascii() and word in text):
            return number
    return None


def _best_match(text: str, candidates: list[Generation]) -> Generation:
    """The candidate whose words overlap the description most (newest wins ties)."""
    wanted = {w for w in re.findall(r"[\w-]+", text) if w not in _STOP}
    wanted |= {part for w in wanted for part in w.split("-") if part not in _STOP}
    best, best_score = None, 0.0
    for candidate in candidates:
        said = f"{candidate.prompt} {candidate.user_words} {candidate.caption or ''}"
        words = set(re.findall(r"[\w-]+", said.lower()))
        score = len(wanted & words) / max(1, len(wanted))
        if score >= best_score and score > 0:
            best, best_score = candidate, score
    if best is None or best_score < 0.5:
        raise UnknownImage(f"no image matches {text!r}")
    return best
