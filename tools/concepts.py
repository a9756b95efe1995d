"""Taught words (/teach, /concepts): a server's own words, learned on the worker from a few pictures.

A word belongs to the server (guild) that taught it. It is kept here, in SQLite next to the
image history, with its owner, its source pictures, the base model and the training
settings; its embedding file and the pictures live under the storage folder. Only that
server's requests ever carry it to the worker (`words_in`), so another server writing the
same word in a prompt gets plain text.

    Outcome of teach
    ├── Taught    the word, stored
    ├── Refused   a request the asker can fix (bad name, taken, too few pictures, a model
    │             that cannot learn words); `reason` is safe to show
    └── Failed    the worker could not do it (busy, down, cancelled)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosqlite
from pydantic import ValidationError

from egaku.errors import EgakuError, WorkerRejected
from tools.context import ProgressCallback, Requester
from tools.files import write_once
from tools.history import open_sqlite
from tools.service import Failed, Refused, watching
from tools.uploads import Upload
from worker.protocol import (
    MAX_CONCEPTS,
    MAX_TEACH_IMAGES,
    MIN_TEACH_IMAGES,
    TOKEN_PATTERN,
    ConceptChoice,
    TeachRequest,
    TeachResponse,
)

MAX_WORDS_PER_SERVER = 50
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


class ConceptTrainer(Protocol):
    """The worker's training route (tools.worker_client.WorkerClient has it)."""

    async def train(
        self, request: TeachRequest, images: Sequence[bytes], on_progress: ProgressCallback | None = None
    ) -> TeachResponse:
        """POST /v1/concepts/train; raise an EgakuError on failure."""
        ...


@dataclass(frozen=True)
class Concept:
    """One taught word of one server."""

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


@dataclass(frozen=True)
class Taught:
    """A word learned and stored."""

    concept: Concept
    steps: int
    stopped_by: str  # "steps", or "time" when the time bound ended the run early


TeachOutcome = Taught | Refused | Failed


def word_name(text: str) -> str:
    """A word's name from what a user typed ("<Our Mascot>" → "our-mascot"); ValueError when unusable."""
    name = re.sub(r"\s+", "-", text.strip().strip("<>").strip().lower())
    if not _NAME.match(name):
        raise ValueError(
            "a word's name is 1 to 31 letters, digits, - or _, starting with a letter or digit (like our-mascot)"
        )
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
        await asyncio.to_thread(shutil.rmtree, self._folder / _word_folder(concept.file), True)
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


def _word_folder(file: str) -> str:
    return file.rsplit("/", 1)[0]


class Concepts:
    """Teaches, lists, renames and deletes a server's words, and finds them in prompts."""

    def __init__(self, store: ConceptStore, trainer: ConceptTrainer | None, model: str | None = None) -> None:
        self.store = store
        self._trainer = trainer
        self._model = model  # the preset words are taught on; None: the worker's default

    async def teach(
        self, who: Requester, name: str, pictures: Sequence[Upload], init_word: str | None = None
    ) -> TeachOutcome:
        """Train a word on the worker from checked uploads, then keep it for the asker's server."""
        if who.guild_id is None:
            return Refused("words are taught to a server: use /teach in a server")
        if self._trainer is None:
            return Refused("teaching words needs an egaku worker; this bot draws with OpenAI's API")
        try:
            name = word_name(name)
        except ValueError as exc:
            return Refused(str(exc), invalid=True)
        if not MIN_TEACH_IMAGES <= len(pictures) <= MAX_TEACH_IMAGES:
            return Refused(
                f"teaching a word takes {MIN_TEACH_IMAGES} to {MAX_TEACH_IMAGES} pictures; got {len(pictures)}"
            )
        known = await self.store.of(who.guild_id)
        if any(c.name == name for c in known):
            return Refused(f"this server already has <{name}>; delete or rename it first (/concepts)")
        if len(known) >= MAX_WORDS_PER_SERVER:
            return Refused(f"this server has {MAX_WORDS_PER_SERVER} words already; delete one first (/concepts)")
        fields = {"token": f"<{name}>", "model": self._model, "user": who.user_id, "init_word": init_word}
        try:
            request = TeachRequest.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError:
            return Refused("`like` is one everyday English word for what it is, such as toy, cat or logo", invalid=True)
        images = [picture.png for picture in pictures]
        try:
            async with watching(who) as (job_id, on_progress):
                taught = await self._trainer.train(request.model_copy(update={"job_id": job_id}), images, on_progress)
        except WorkerRejected as exc:
            return Refused(str(exc))
        except EgakuError as exc:
            return Failed(exc)
        embedding = base64.b64decode(taught.embedding, validate=True)
        file, sources = await asyncio.to_thread(self.store.store_files, who.guild_id, name, embedding, images)
        used = taught.settings
        concept = Concept(
            guild_id=who.guild_id, name=name, owner_id=who.user_id, model=used.model, family=used.family, file=file,
            sources=tuple(sources), settings=used.model_dump_json(), loss=taught.loss, created=time.time(),
        )  # fmt: skip
        await self.store.add(concept)
        return Taught(concept, steps=used.steps, stopped_by=used.stopped_by)

    async def rename(self, guild_id: str, old: str, new: str) -> Concept | Refused:
        """A word under a new name (the new name must be free)."""
        try:
            old, new = word_name(old), word_name(new)
        except ValueError as exc:
            return Refused(str(exc), invalid=True)
        if await self.store.get(guild_id, new) is not None:
            return Refused(f"this server already has <{new}>")
        if not await self.store.rename(guild_id, old, new):
            return Refused(f"this server has no word <{old}>")
        renamed = await self.store.get(guild_id, new)
        assert renamed is not None
        return renamed

    async def delete(self, guild_id: str, name: str) -> Concept | Refused:
        """Forget a word and remove its files."""
        try:
            name = word_name(name)
        except ValueError as exc:
            return Refused(str(exc), invalid=True)
        deleted = await self.store.delete(guild_id, name)
        return deleted if deleted is not None else Refused(f"this server has no word <{name}>")

    async def words_in(self, guild_id: str | None, prompt: str) -> list[ConceptChoice]:
        """The asker's server's words that a prompt uses, with their files; never another server's."""
        if guild_id is None or "<" not in prompt:
            return []
        used = [c for c in await self.store.of(guild_id) if c.token in prompt][:MAX_CONCEPTS]
        return [ConceptChoice(token=c.token, embedding=await asyncio.to_thread(self.store.embedding, c)) for c in used]

    async def note(self, guild_id: str | None) -> str:
        """What the model is told about this server's words (empty when it has none)."""
        if guild_id is None:
            return ""
        words = await self.store.of(guild_id)
        if not words:
            return ""
        listed = ", ".join(c.token for c in words)
        return (
            f"Words this server taught the image model: {listed}. When the user means one of them, in any "
            "language (for example 'our mascot', 'うちのマスコット'), write that word exactly, with its angle "
            "brackets, in the English prompt, e.g. 'a photo of <our-mascot> on the moon'."
        )
