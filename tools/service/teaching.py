"""Teaching concepts (/teach, /concepts): a server's own words, learned on the worker from a few pictures.

Only the teaching server's requests ever carry a concept to the worker (`concepts_in`), so
another server writing the same word in a prompt gets plain text.

    Outcome of teach
    ├── Taught    the concept, stored
    ├── Refused   a request the asker can fix (bad name, taken, too few pictures, a model
    │             that cannot learn words); `reason` is a fixed text, safe to show
    └── Failed    the worker could not do it (busy, down, cancelled)
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from egaku.errors import Failure, Refusal
from egaku.i18n import Text, _
from tools.backends.base import ProgressCallback
from tools.checks.uploads import Upload
from tools.service.requests import Failed, Refused, Requester
from tools.service.watching import watching
from tools.stores.concepts import MAX_CONCEPTS_PER_SERVER, NAME_RULE, Concept, ConceptStore, concept_name
from worker.protocol import MAX_CONCEPTS, MAX_TEACH_IMAGES, MIN_TEACH_IMAGES, ConceptChoice, TeachRequest, TeachResponse


class ConceptTrainer(Protocol):
    """The worker's training route (tools.backends.worker_client.WorkerClient has it)."""

    async def train(
        self, request: TeachRequest, images: Sequence[bytes], on_progress: ProgressCallback | None = None
    ) -> TeachResponse:
        """POST /v1/concepts/train; raise an EgakuError on failure."""
        ...


@dataclass(frozen=True)
class Taught:
    """A word learned and stored."""

    concept: Concept
    steps: int
    stopped_by: str  # "steps", or "time" when the time bound ended the run early


TeachOutcome = Taught | Refused | Failed


def no_word(name: str) -> Text:
    """The refusal for a word the server does not have."""
    return _("this server has no word <{name}>", name=name)


class ConceptService:
    """Teaches, lists, renames and deletes a server's concepts, and finds them in its prompts."""

    def __init__(self, store: ConceptStore, trainer: ConceptTrainer | None, model: str | None = None) -> None:
        self.store = store
        self._trainer = trainer
        self._model = model  # the preset words are taught on; None: the worker's default

    async def teach(
        self, who: Requester, name: str, pictures: Sequence[Upload], init_word: str | None = None
    ) -> TeachOutcome:
        """Train a word on the worker from checked uploads, then keep it for the asker's server."""
        if who.guild_id is None:
            return Refused(_("words are taught to a server: use /teach in a server"))
        if self._trainer is None:
            return Refused(_("teaching words needs an egaku worker; this bot draws with OpenAI's API"))
        try:
            name = concept_name(name)
        except ValueError:
            return Refused(NAME_RULE, invalid=True)
        if not MIN_TEACH_IMAGES <= len(pictures) <= MAX_TEACH_IMAGES:
            return Refused(
                _(
                    "teaching a word takes {least} to {most} pictures; got {count}",
                    least=MIN_TEACH_IMAGES, most=MAX_TEACH_IMAGES, count=len(pictures),
                )
            )  # fmt: skip
        known = await self.store.of(who.guild_id)
        if any(c.name == name for c in known):
            return Refused(_("this server already has <{name}>; delete or rename it first (/concepts)", name=name))
        if len(known) >= MAX_CONCEPTS_PER_SERVER:
            return Refused(
                _("this server has {count} words already; delete one first (/concepts)", count=MAX_CONCEPTS_PER_SERVER)
            )
        fields = {"token": f"<{name}>", "model": self._model, "user": who.user_id, "init_word": init_word}
        try:
            request = TeachRequest.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError:
            return Refused(
                _("`like` is one everyday English word for what it is, such as toy, cat or logo"), invalid=True
            )
        images = [picture.png for picture in pictures]
        try:
            async with watching(who) as (job_id, on_progress):
                taught = await self._trainer.train(request.model_copy(update={"job_id": job_id}), images, on_progress)
        except Refusal as exc:
            return Refused(exc.text, detail=exc.detail)
        except Failure as exc:
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
            old, new = concept_name(old), concept_name(new)
        except ValueError:
            return Refused(NAME_RULE, invalid=True)
        if await self.store.get(guild_id, new) is not None:
            return Refused(_("this server already has <{name}>", name=new))
        if not await self.store.rename(guild_id, old, new):
            return Refused(no_word(old))
        renamed = await self.store.get(guild_id, new)
        assert renamed is not None
        return renamed

    async def delete(self, guild_id: str, name: str) -> Concept | Refused:
        """Forget a word and remove its files."""
        try:
            name = concept_name(name)
        except ValueError:
            return Refused(NAME_RULE, invalid=True)
        deleted = await self.store.delete(guild_id, name)
        return deleted if deleted is not None else Refused(no_word(name))

    async def concepts_in(self, guild_id: str | None, prompt: str) -> list[ConceptChoice]:
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
