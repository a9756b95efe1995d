"""The job journal: every accepted request and image job, in SQLite, so that a restart loses none.

A front end opens a *turn* when it accepts a request (a message, a slash command, a press):
where the answer goes (`AnswerTo`) and, for a turn it can run again from the start, its own
record of the request (`ask`). The image service writes each *job* of the turn before it waits
in line or is sent: who asked, the validated worker request (the pictures it reads and its lineage
by history id, never their files), its id (the worker's idempotency key) and its state as it moves:

    queued ─► sent ─► running ─► done ─┐
       └────────┴─────────┴──► failed ─┴─► posted   (when the turn is answered)

On start the bot reads the turns still open (`unfinished`), sends their jobs again under the
same ids, and answers each turn once. The journal is bounded: answered turns are forgotten
after `keep_days`, and an interaction's token (a 15-minute secret) is forgotten once answered.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import aiosqlite

from egaku.i18n import Text, text_from_json, text_json
from tools.pictures import ImageKind, Parent
from tools.service.requests import AnswerTo, ImageOptions, Planned, Requester
from tools.stores.sqlite import open_sqlite
from worker.protocol import EditRequest, GenerationRequest

JobState = Literal["queued", "sent", "running", "done", "failed", "posted"]
UNFINISHED: tuple[JobState, ...] = ("queued", "sent", "running", "done", "failed")

SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS turns (
    turn TEXT PRIMARY KEY,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    answer TEXT NOT NULL,
    ask TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    answered REAL
);
CREATE INDEX IF NOT EXISTS turns_state ON turns (state, created);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    turn TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    who TEXT NOT NULL,
    operation TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    parents TEXT NOT NULL DEFAULT '[]',
    pictures TEXT NOT NULL DEFAULT '',
    reply TEXT,
    notice TEXT,
    images TEXT NOT NULL DEFAULT '',
    error TEXT,
    retryable INTEGER NOT NULL DEFAULT 0,
    status_channel TEXT,
    status_message TEXT
);
CREATE INDEX IF NOT EXISTS jobs_turn ON jobs (turn, created);
"""


@dataclass(frozen=True)
class JournaledJob:
    """One image job as the journal keeps it: enough to send it again and to answer for it."""

    job_id: str
    turn: str
    state: JobState
    created: float
    who: Requester  # the asker, as the image service saw them (no watch: that is the running bot's)
    planned: Planned  # the validated request; its pictures by history id (their files are read again from there)
    images: tuple[str, ...] = ()  # history ids, once done
    error: Text | None = None  # the user's text, once failed
    retryable: bool = False  # a failure the asker may try again (not a cancel)
    status: tuple[str, str] | None = None  # (channel id, message id) of its status message

    @property
    def finished(self) -> bool:
        """Done or failed: nothing left to send."""
        return self.state in ("done", "failed", "posted")


@dataclass(frozen=True)
class OpenTurn:
    """A request not answered yet: where its answer goes, its jobs, and how often a start resumed it."""

    turn: str
    answer: AnswerTo
    created: float
    jobs: tuple[JournaledJob, ...]
    ask: str | None = None  # the front end's own record of the request, to run it again
    attempts: int = 0


class JobJournal:
    """The turns and jobs in flight, in one SQLite file next to the history."""

    def __init__(self, db: aiosqlite.Connection, keep_days: float = 7.0) -> None:
        self._db = db
        self._keep_s = keep_days * 86400

    @classmethod
    async def open(cls, path: Path, keep_days: float = 7.0) -> JobJournal:
        """Open (or create) the journal; answered turns older than `keep_days` are forgotten."""
        db = await open_sqlite(path, SCHEMA)
        # A killed process loses nothing committed in WAL mode; NORMAL skips an fsync per state change.
        await db.execute("PRAGMA synchronous = NORMAL")
        journal = cls(db, keep_days)
        await journal.prune()
        return journal

    async def close(self) -> None:
        """Close the database."""
        await self._db.close()

    async def prune(self) -> None:
        """Forget turns answered more than `keep_days` ago, with their jobs."""
        cutoff = time.time() - self._keep_s
        old = "SELECT turn FROM turns WHERE state = 'answered' AND answered < ?"
        await self._db.execute(f"DELETE FROM jobs WHERE turn IN ({old})", (cutoff,))
        await self._db.execute("DELETE FROM turns WHERE state = 'answered' AND answered < ?", (cutoff,))
        await self._db.commit()

    # -- turns ---------------------------------------------------------------
    async def open_turn(self, answer: AnswerTo, ask: str | None = None) -> None:
        """A request was accepted: it will be answered, after a restart if need be."""
        await self._db.execute(
            "INSERT INTO turns (turn, created, state, answer, ask) VALUES (?, ?, 'open', ?, ?) "
            "ON CONFLICT (turn) DO UPDATE SET ask = COALESCE(excluded.ask, turns.ask)",
            (answer.turn, time.time(), _answer_json(answer), ask),
        )
        await self._db.commit()

    async def answered(self, turn: str) -> None:
        """The turn's answer is posted: its jobs are too, and its interaction token is forgotten."""
        now = time.time()
        row = await self._one("SELECT answer FROM turns WHERE turn = ?", (turn,))
        if row is not None:
            answer = dataclasses.replace(_answer(row[0]), token=None)
            await self._db.execute(
                "UPDATE turns SET state = 'answered', answered = ?, answer = ? WHERE turn = ?",
                (now, _answer_json(answer), turn),
            )
        await self._db.execute("UPDATE jobs SET state = 'posted', updated = ? WHERE turn = ?", (now, turn))
        await self._db.commit()

    async def resumed(self, turn: str) -> int:
        """Count one more start that took this turn up again; how many there have been."""
        await self._db.execute("UPDATE turns SET attempts = attempts + 1 WHERE turn = ?", (turn,))
        await self._db.commit()
        row = await self._one("SELECT attempts FROM turns WHERE turn = ?", (turn,))
        return int(row[0]) if row else 0

    async def unfinished(self) -> list[OpenTurn]:
        """The turns not answered yet, oldest first, each with its jobs in the order they were made."""
        turns = []
        async with self._db.execute(
            "SELECT turn, answer, created, ask, attempts FROM turns WHERE state = 'open' ORDER BY created"
        ) as cursor:
            rows = list(await cursor.fetchall())
        for turn, answer, created, ask, attempts in rows:
            address = _answer(answer)
            jobs = await self._jobs("WHERE turn = ? ORDER BY created", (turn,), address)
            turns.append(OpenTurn(turn, address, created, tuple(jobs), ask, attempts))
        return turns

    async def turn_of(self, job_id: str) -> OpenTurn | None:
        """The turn a job belongs to, open or answered (a Retry press names the job)."""
        job = await self.job(job_id)
        if job is None:
            return None
        row = await self._one("SELECT answer, created, ask, attempts FROM turns WHERE turn = ?", (job.turn,))
        if row is None:
            return None
        address = _answer(row[0])
        return OpenTurn(job.turn, address, row[1], (_addressed(job, address),), row[2], row[3])

    # -- jobs ----------------------------------------------------------------
    async def accepted(self, job_id: str, who: Requester, planned: Planned) -> None:
        """Write a job before it waits or is sent (a job sent again keeps its row and its state moves back)."""
        answer = who.answer
        assert answer is not None, "only jobs with an answer address are journaled"
        now = time.time()
        await self._db.execute(
            "INSERT OR IGNORE INTO turns (turn, created, state, answer) VALUES (?, ?, 'open', ?)",
            (answer.turn, now, _answer_json(answer)),
        )
        operation = "edit" if isinstance(planned.request, EditRequest) else "generate"
        await self._db.execute(
            "INSERT INTO jobs (job_id, turn, created, updated, state, who, operation, kind, request, parents, "
            "pictures, reply, notice) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET state = 'queued', updated = excluded.updated",
            (
                job_id, answer.turn, now, now, requester_json(who), operation, planned.kind,
                # The pictures a generation reads travel in its request as base64: kept by id, like an edit's.
                planned.request.model_dump_json(exclude_none=True, exclude={"references"}),
                json.dumps([dataclasses.asdict(p) for p in planned.parents]), ",".join(planned.pictures),
                planned.reply, text_json(planned.notice) if planned.notice else None,
            ),
        )  # fmt: skip
        await self._db.commit()

    async def moved(self, job_id: str, state: Literal["sent", "running"]) -> None:
        """The job was sent to the worker, or the worker started drawing it."""
        await self._set(job_id, "state = ?", state)

    async def done(self, job_id: str, image_ids: list[str]) -> None:
        """The job's pictures are in the history."""
        await self._set(job_id, "state = 'done', images = ?", ",".join(image_ids))

    async def failed(self, job_id: str, text: Text, *, retryable: bool) -> None:
        """The job could not be made; `text` is the user's, safe to show (said in their language when answered)."""
        await self._set(job_id, "state = 'failed', error = ?, retryable = ?", text_json(text), int(retryable))

    async def status_shown(self, job_id: str, channel_id: str, message_id: str | None) -> None:
        """Where the job's status message is (None: it was removed), so that a restart can take it over."""
        await self._set(job_id, "status_channel = ?, status_message = ?", channel_id, message_id)

    async def job(self, job_id: str) -> JournaledJob | None:
        """One job by id."""
        found = await self._jobs("WHERE job_id = ?", (job_id,))
        return found[0] if found else None

    async def _set(self, job_id: str, assignments: str, *values: Any) -> None:
        await self._db.execute(
            f"UPDATE jobs SET {assignments}, updated = ? WHERE job_id = ?", (*values, time.time(), job_id)
        )
        await self._db.commit()

    async def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        async with self._db.execute(sql, args) as cursor:
            return await cursor.fetchone()

    async def _jobs(self, where: str, args: tuple[Any, ...], answer: AnswerTo | None = None) -> list[JournaledJob]:
        columns = (
            "job_id, turn, state, created, who, operation, kind, request, parents, pictures, reply, notice, images, "
            "error, retryable, status_channel, status_message"
        )
        async with self._db.execute(f"SELECT {columns} FROM jobs {where}", args) as cursor:
            rows = list(await cursor.fetchall())
        jobs = [_job(row) for row in rows]
        return [_addressed(job, answer) for job in jobs] if answer is not None else jobs


def _addressed(job: JournaledJob, answer: AnswerTo) -> JournaledJob:
    """The job with its turn's answer address (kept once per turn, not per job)."""
    return dataclasses.replace(job, who=dataclasses.replace(job.who, answer=answer))


def _job(row: Any) -> JournaledJob:
    (job_id, turn, state, created, who, operation, kind, request, parents, pictures, reply, notice, images, error,
     retryable, status_channel, status_message) = row  # fmt: skip
    model = EditRequest if operation == "edit" else GenerationRequest
    lineage = tuple(Parent(p["id"], p["role"]) for p in json.loads(parents))
    ids = tuple(i for i in pictures.split(",") if i)
    planned = Planned(
        model.model_validate_json(request),
        cast(ImageKind, kind),
        lineage,
        ids,
        reply=reply,
        notice=text_from_json(notice) if notice else None,
    )
    return JournaledJob(
        job_id=job_id,
        turn=turn,
        state=state,
        created=created,
        who=requester_from_json(who),
        planned=planned,
        images=tuple(i for i in images.split(",") if i),
        error=text_from_json(error) if error else None,
        retryable=bool(retryable),
        status=(status_channel, status_message) if status_channel and status_message else None,
    )


def _answer_json(answer: AnswerTo) -> str:
    return json.dumps(dataclasses.asdict(answer))


def _answer(text: str) -> AnswerTo:
    return AnswerTo(**json.loads(text))


def requester_json(who: Requester) -> str:
    """The asker as JSON (without the running bot's watcher, or the answer address its turn keeps)."""
    fields = {f.name: getattr(who, f.name) for f in dataclasses.fields(who) if f.name not in ("watch", "answer")}
    fields["options"] = dataclasses.asdict(who.options)
    return json.dumps(fields, ensure_ascii=False)


def requester_from_json(text: str) -> Requester:
    """The asker back from `requester_json`."""
    fields = json.loads(text)
    return Requester(**{**fields, "options": ImageOptions(**fields["options"])})
