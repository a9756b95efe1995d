"""Taught concepts (/teach, /concepts): a server's own words for things, stored with their files.

A concept belongs to the server (guild) that taught it. It is kept here, in SQLite next to the
image history, with its owner, its source pictures, the base model and the training settings;
its embedding file and the pictures live under the storage folder. Teaching, and finding a
server's concepts in its prompts, is `tools.service.teaching`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from egaku.i18n import _
from tools.stores.files import write_once
from tools.stores.sqlite import open_sqlite
from worker.protocol import TOKEN_PATTERN

MAX_CONCEPTS_PER_SERVER = 50
NAME_RULE = _("a word's name is 1 to 31 letters, digits, - or _, starting with a letter or digit (like our-mascot)")
# The protocol's token pattern without its angle brackets: names and tokens can never disagree.
_NAME = re.compile(TOKEN_PATTERN.removeprefix("^<").removesuffix(">$").join("^$"))

SCHEMA = """
CREATE TABLE IF NOT EXISTS concepts (
    guild_id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    model TEXT NOT NULL,
    family TEXT NOT NULL,
    file TEXT NOT NULL,
    sources TEXT NOT NULL,
    settings TEXT NOT NULL,
    loss REAL,
    created REAL NOT NULL,
    PRIMARY KEY (guild_id, name)
);
"""


@dataclass(frozen=True)
class Concept:
    """One taught concept of one server."""

    guild_id: str
    name: str  # as typed in prompts between angle brackets: <name>
    owner_id: str
    model: str  # the preset it was trained on
    family: str
    file: str  # the embedding, relative to the store's folder
    sources: tuple[str, ...]  # the pictures it was taught with, relative to the store's folder
    settings: str  # JSON: how it was trained (steps, learning rate, init word, size, seed...)
    loss: float | None
    created: float

    @property
    def token(self) -> str:
        """The word as written in prompts."""
        return f"<{self.name}>"


def concept_name(text: str) -> str:
    """A word's name from what a user typed ("<Our Mascot>" → "our-mascot"); ValueError when unusable."""
    name = re.sub(r"\s+", "-", text.strip().strip("<>").strip().lower())
    if not _NAME.match(name):
        raise ValueError(str(NAME_RULE))
    return name


class ConceptStore:
    """Taught words in SQLite, their files under `folder`. Open with `await ConceptStore.open(db, folder)`."""

    def __init__(self, db: aiosqlite.Connection, folder: Path) -> None:
        self._db = db
        self._folder = folder

    @classmethod
    async def open(cls, path: Path, folder: Path) -> ConceptStore:
        """Open (and create) the store."""
        return cls(await open_sqlite(path, SCHEMA), folder)

    async def close(self) -> None:
        """Close the database."""
        await self._db.close()

    def path(self, relative: str) -> Path:
        """A stored file's path."""
        return self._folder / relative

    async def add(self, concept: Concept) -> None:
        """Record a word (its files are already written)."""
        fields = list(Concept.__dataclass_fields__)
        values = [json.dumps(list(concept.sources)) if f == "sources" else getattr(concept, f) for f in fields]
        sql = f"INSERT INTO concepts ({','.join(fields)}) VALUES ({','.join('?' * len(fields))})"
        await self._db.execute(sql, values)
        await self._db.commit()

    async def of(self, guild_id: str) -> list[Concept]:
        """A server's words, oldest first."""
        return await self._select("guild_id = ? ORDER BY created, name", (guild_id,))

    async def get(self, guild_id: str, name: str) -> Concept | None:
        """One word of a server."""
        found = await self._select("guild_id = ? AND name = ?", (guild_id, name))
        return found[0] if found else None

    async def _select(self, where: str, args: tuple[object, ...]) -> list[Concept]:
        fields = list(Concept.__dataclass_fields__)
        async with self._db.execute(f"SELECT {','.join(fields)} FROM concepts WHERE {where}", args) as cur:
            rows = await cur.fetchall()
        concepts = []
        for row in rows:
            values = dict(zip(fields, row, strict=True))
            values["sources"] = tuple(json.loads(values["sources"]))
            concepts.append(Concept(**values))
        return concepts

    async def rename(self, guild_id: str, old: str, new: str) -> bool:
        """Give a word a new name; False when it does not exist (the new name must be free)."""
        cursor = await self._db.execute(
            "UPDATE concepts SET name = ? WHERE guild_id = ? AND name = ?", (new, guild_id, old)
        )
        await self._db.commit()
        return cursor.rowcount > 0

    async def delete(self, guild_id: str, name: str) -> Concept | None:
        """Forget a word and remove its files; the word, or None when it did not exist."""
        concept = await self.get(guild_id, name)
        if concept is None:
            return None
        await self._db.execute("DELETE FROM concepts WHERE guild_id = ? AND name = ?", (guild_id, name))
        await self._db.commit()
        await asyncio.to_thread(shutil.rmtree, self._folder / _concept_folder(concept.file), True)
        return concept

    def embedding(self, concept: Concept) -> str:
        """The word's file in base64, as a request carries it."""
        return base64.b64encode(self.path(concept.file).read_bytes()).decode("ascii")

    def store_files(
        self, guild_id: str, name: str, embedding: bytes, pictures: Sequence[bytes]
    ) -> tuple[str, list[str]]:
        """Write a new word's file and its pictures under a fresh folder of its own; relative paths back."""
        folder = f"{guild_id}/{name}-{hashlib.sha256(embedding).hexdigest()[:12]}"
        file = f"{folder}/embedding.safetensors"
        write_once(self._folder / file, embedding)
        sources = []
        for picture in pictures:
            source = f"{folder}/sources/{hashlib.sha256(picture).hexdigest()}.png"
            write_once(self._folder / source, picture)
            sources.append(source)
        return file, sources


def _concept_folder(file: str) -> str:
    return file.rsplit("/", 1)[0]
