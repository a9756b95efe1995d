"""The image service: a typed request in, typed images or a typed refusal or failure out.

Every way of asking for a picture goes through here: the LLM tools (`tools.image_tools`),
the buttons, `/imagine raw` and the CLI. They only adapt an `Outcome` (`tools.service.requests`)
to their surface (text for the model, a Discord message, lines in a terminal). Caps, the safety
blocklist, progress, the audit record and the image history are applied here, once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Protocol

from pydantic import ValidationError

from egaku.errors import (
    Blocked,
    EditNotPossible,
    Failure,
    InvalidImageRequest,
    Refusal,
    TooManyCandidates,
    UnknownImage,
    WorkerRejected,
    WrongLanguage,
)
from egaku.i18n import Text, _
from tools.backends.base import ImageBackend, ImageEdit, ImageUpscale
from tools.checks.blocklist import Blocklist
from tools.checks.languages import PromptLanguages, detect_language, language_refusal
from tools.checks.limits import JobLimiter
from tools.pictures import OWN_SIZE_KINDS, ImageKind, Lineage, RenderedImage, edited
from tools.service.outpainting import CANNOT_OUTPAINT, check_zoom, outpaint_fields, outpaint_kind, outpaints
from tools.service.references import APPROXIMATE_TEXT, FromPictures, ReferenceModel, blend_job, edit_job
from tools.service.requests import Draw, Drawn, Edit, EditMode, Failed, Outcome, Refused, Requester, Upscale
from tools.service.upscaling import UpscalerCheck, upscaled
from tools.service.watching import watching
from tools.stores.history import AuditRecord, Generation, History, Viewer
from worker.protocol import MAX_BEST_OF, ConceptChoice, EditRequest, GenerationRequest, UpscaleRequest

log = logging.getLogger(__name__)

STRENGTH = {"subtle": 0.35, "strong": 0.7, "region": 0.95}
UPSCALE_STRENGTH = 0.3  # an upscale redraws detail at the larger size but keeps the picture


class ConceptLookup(Protocol):
    """A server's taught concepts (tools.service.teaching.Teaching): the ones a prompt uses, with their files."""

    async def concepts_in(self, guild_id: str | None, prompt: str) -> list[ConceptChoice]:
        """Only the asker's server's words: another server's are plain text."""
        ...

    async def note(self, guild_id: str | None) -> str:
        """What the model is told about the server's words (empty when it has none)."""
        ...


class ImageService:
    """Draws and edits for anyone who asks, within their caps, and records what it made."""

    def __init__(
        self,
        backend: ImageBackend,
        *,
        history: History | None = None,
        model: str | None = None,
        instruct_model: str | None = None,
        references: ReferenceModel | None = None,
        limiter: JobLimiter | None = None,
        blocklist: Iterable[str] = (),
        safety_check: bool = False,
        languages: PromptLanguages | None = None,
        best_of: int = 1,
        max_best_of: int = MAX_BEST_OF,
        concepts: ConceptLookup | None = None,
    ) -> None:
        self.backend = backend
        self.history = history
        self.concepts = concepts
        self.model = model  # the default preset; a user's or server's choice wins
        self.instruct_model = instruct_model
        self.references = references  # the preset that reads several pictures; None: reference edits are approximate
        self._limiter = limiter
        self._blocklist = Blocklist(blocklist)
        self._safety_check = safety_check
        self._languages = languages or PromptLanguages()  # preset -> the languages its text encoder reads
        self._best_of = best_of  # the bot's default ([best_of] default); a server's default wins
        self.max_best_of = max_best_of
        self._upscaler = UpscalerCheck(backend)

    async def draw(self, who: Requester, request: Draw) -> Outcome:
        """Draw a new picture, from a description or from pictures (a blend)."""

        async def work() -> list[RenderedImage]:
            if request.references:  # a blend: a new picture from pictures alone
                job = await blend_job(self._history(), viewer_of(who), self.references, request)
                return await self._from_pictures(who, job)
            generation = self.generation_request(who, request)
            self._check_language(request.language, generation.model)
            images = await self._generate(who, generation)
            return await self._keep(images, who, "generate")

        return await self._run(who, work)

    async def edit(self, who: Requester, request: Edit) -> Outcome:
        """Change an earlier image, keeping its seed, size and model unless told otherwise (`references.edit_job`:
        an edit that reads further pictures; without a model for them, the same seed and an approximate likeness)."""
        notice: Text | None = None

        async def work() -> list[RenderedImage]:
            nonlocal notice
            history = self._history()
            parent = await history.resolve(request.ref, viewer_of(who))
            mode: EditMode = request.mode or ("instruct" if self.instruct_model else "regenerate")
            job = await edit_job(history, viewer_of(who), self.references, request, parent, mode, STRENGTH)
            if job is not None:
                return await self._from_pictures(who, job)
            if self.references is None and (request.references or mode == "reference"):
                # No preset reads the pictures: the same seed with the new description, said to be approximate.
                notice = APPROXIMATE_TEXT
                mode = "regenerate" if request.mode in (None, "reference") else mode
            if mode == "regenerate" and parent.kind == "upload":
                mode = "strong"  # an upload has no seed to redraw from
            if mode == "region" and not request.target:
                raise EditNotPossible(_("a region edit needs `target`: the words for the part to change"))
            if mode == "instruct" and not self.instruct_model:
                raise EditNotPossible(_("instruction edits are not set up here; use region, subtle or strong"))
            # An upload or an upscale is drawn at the model's own size (the worker fits it); ours keep their size.
            fitted = parent.kind in OWN_SIZE_KINDS and request.scale == 1.0
            common = {
                "prompt": request.prompt,
                "negative_prompt": parent.negative_prompt,
                "seed": parent.seed if request.seed is None else request.seed,
                "size": None if fitted else scaled(parent, request.scale),
                "user": who.user_id,
                "safety_check": self._checks(who) or None,
            }
            model = parent.model or self._model_for(who)  # an upload (and its upscale) has no model of its own
            if outpaints(request):
                check_zoom(parent, request)
                self._check_language(request.language, model)
                images = await self._outpaint(who, {**common, "model": model, **outpaint_fields(request)}, parent)
                return await self._keep(images, who, outpaint_kind(request), edited(parent.id))
            self._check_language(request.language, self.instruct_model if mode == "instruct" else model)
            if mode == "regenerate":
                given = {**common, "model": model, "steps": parent.steps}
                generation = GenerationRequest.model_validate({k: v for k, v in given.items() if v is not None})
                images = await self._generate(who, generation)
            else:
                fields: dict[str, object] = {**common, "model": self.instruct_model if mode == "instruct" else model}
                if mode != "instruct":
                    fields["strength"] = STRENGTH[mode] if request.scale == 1.0 else UPSCALE_STRENGTH
                if mode == "region":
                    fields["mask_prompt"] = request.target
                edit = EditRequest.model_validate({k: v for k, v in fields.items() if v is not None})
                images = await self._edit(who, ImageEdit(edit, history.png(parent)))
            return await self._keep(images, who, mode, edited(parent.id))

        outcome = await self._run(who, work)
        return replace(outcome, notice=notice) if notice and isinstance(outcome, Drawn) else outcome

    async def _from_pictures(self, who: Requester, job: FromPictures) -> list[RenderedImage]:
        """Send the pictures, in order, with the whole new description; record the new one with its parents."""
        history = self._history()
        self._check_language(job.language, job.model)
        pngs = await asyncio.to_thread(lambda: [history.png(g) for g in job.pictures])  # disk reads: off the loop
        request = job.request(pngs, who.user_id, self._checks(who), who.options)
        if isinstance(request, EditRequest):
            images = await self._edit(who, ImageEdit(request, pngs[0], references=tuple(pngs[1:])))
        else:
            images = await self._generate(who, request)
        return await self._keep(images, who, job.kind, job.parents)

    async def upscale(self, who: Requester, request: Upscale) -> Outcome:
        """Enlarge an earlier image with the backend's upscaler, nothing redrawn; without one, draw the fallback."""
        if request.fallback is not None and await self.upscaler() is None:
            return await self.edit(who, request.fallback)

        async def work() -> list[RenderedImage]:
            history = self._history()
            parent = await history.resolve(request.ref, viewer_of(who))
            self._check_safety(who, parent.prompt)
            job = UpscaleRequest(scale=request.scale, job_id=uuid.uuid4().hex[:16])
            done = await self.backend.upscale(ImageUpscale(job, history.png(parent)))
            return await self._keep(said_by(who, [upscaled(parent, done)]), who, "upscale", edited(parent.id))

        return await self._run(who, work)

    async def upscaler(self) -> str | None:
        """The backend's upscaler by name, None when it has none (asked now and then, not on every call)."""
        return await self._upscaler.name()

    def _history(self) -> History:
        """The history that edits find their pictures in."""
        if self.history is None:
            raise UnknownImage("there is no image history here")
        return self.history

    async def _outpaint(self, who: Requester, fields: dict[str, object], parent: Generation) -> list[RenderedImage]:
        """A zoom or a pan of `parent`, painted by its own model; a model that cannot paint past edges says so."""
        edit = EditRequest.model_validate({k: v for k, v in fields.items() if v is not None})
        try:
            return await self._edit(who, ImageEdit(edit, self._history().png(parent)))
        except WorkerRejected as exc:
            if exc.param != "model":  # the parent's own preset: one without inpainting, or one gone since
                raise
            raise EditNotPossible(CANNOT_OUTPAINT) from exc

    def generation_request(self, who: Requester, request: Draw) -> GenerationRequest:
        """The worker request for a draw, validated; the user's explicit options win."""
        fields: dict[str, object] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "aspect": request.aspect,
            "seed": request.seed,
            "model": self.model,
            "user": who.user_id,
            "safety_check": self._checks(who) or None,
        }
        # The user's explicit choice, the model's, the server's default, the bot's default; a default
        # gives way to a grid the user asked for (best-of posts one picture).
        asked = who.options.best_of or request.best_of
        default = 1 if (who.options.count or 1) > 1 else who.best_of or self._best_of
        best_of = asked or default
        self.check_best_of(best_of)
        if best_of > 1:  # 1 is the worker's default: such a request stays what it was before best-of
            fields["best_of"] = best_of
        fields = who.options.apply(fields)
        return GenerationRequest.model_validate({k: v for k, v in fields.items() if v is not None})

    def check_best_of(self, asked: int) -> None:
        """Refuse, with the user's text, a best_of outside 1..this bot's cap (the worker checks its own again)."""
        if not 1 <= asked <= self.max_best_of:
            raise TooManyCandidates(asked, self.max_best_of)

    def _model_for(self, who: Requester) -> str | None:
        return who.options.model or self.model

    def prompt_languages(self, model: str | None) -> tuple[str, ...]:
        """The languages a preset's text encoder reads (English when unknown, e.g. a remote worker's default)."""
        return self._languages.of(model or self.model)

    def languages_for(self, who: Requester) -> tuple[str, ...]:
        """The languages the model drawing this user's new pictures reads."""
        return self.prompt_languages(self._model_for(who))

    def _check_language(self, language: str | None, model: str | None) -> None:
        """Refuse an LLM-written prompt the model cannot read; the LLM is told which language to write."""
        languages = self.prompt_languages(model)
        if language is not None and language not in languages:
            raise WrongLanguage(language_refusal(language, languages, model or self.model or "default"))

    def _checks(self, who: Requester) -> bool:
        return self._safety_check and not who.nsfw

    def _blocks(self, who: Requester) -> bool:
        return bool(self._blocklist) and not who.nsfw

    def _check_safety(self, who: Requester, prompt: str) -> None:
        """Refuse a final prompt that uses a blocked word here (outside NSFW channels), as the encoder reads it."""
        word = self._blocklist.hit(prompt) if self._blocks(who) else None
        if word is not None:
            raise Blocked(f"blocked word {word!r}")

    async def _generate(self, who: Requester, request: GenerationRequest) -> list[RenderedImage]:
        self._check_safety(who, request.prompt)
        async with watching(who) as (job_id, on_progress):
            request = request.model_copy(update={"job_id": job_id, **await self._taught(who, request)})
            return said_by(who, await self.backend.generate(request, on_progress))

    async def _edit(self, who: Requester, edit: ImageEdit) -> list[RenderedImage]:
        self._check_safety(who, edit.request.prompt)
        async with watching(who) as (job_id, on_progress):
            request = edit.request.model_copy(update={"job_id": job_id, **await self._taught(who, edit.request)})
            return said_by(who, await self.backend.edit(replace(edit, request=request), on_progress))

    async def _taught(self, who: Requester, request: GenerationRequest) -> dict[str, object]:
        """The asker's server's words the prompt uses, for the worker to load for this request only."""
        if self.concepts is None:
            return {}
        used = await self.concepts.concepts_in(who.guild_id, request.prompt)
        return {"concepts": used} if used else {}

    async def _run(self, who: Requester, work: Callable[[], Awaitable[list[RenderedImage]]]) -> Outcome:
        """Run a render within the user's caps, audit it, and type its outcome."""
        started = time.monotonic()
        try:
            if self._limiter is None:
                images = await work()
            else:
                async with self._limiter.slot(who.user_id, who.guild_id, who.guild_cap):
                    images = await work()
        except ValidationError as exc:
            await self._audit(who, started, "invalid", [])
            return Refused(Text(InvalidImageRequest.user_text), invalid=True, detail=str(exc.errors()[0]["msg"]))
        except Refusal as exc:
            invalid = isinstance(exc, InvalidImageRequest)
            verdict = "blocked" if isinstance(exc, Blocked) else None
            await self._audit(who, started, "invalid" if invalid else type(exc).__name__, [], verdict=verdict)
            return Refused(exc.text, invalid=invalid, detail=exc.detail)
        except Failure as exc:
            await self._audit(who, started, type(exc).__name__, [])
            return Failed(exc)
        await self._audit(who, started, "ok", images)
        return Drawn(tuple(images))

    async def _keep(
        self, images: list[RenderedImage], who: Requester, kind: ImageKind, parents: Lineage = ()
    ) -> list[RenderedImage]:
        """Record images in the history (when there is one), with their parents in order; return them with ids."""
        first = parents[0].id if parents else None

        def made(image: RenderedImage, image_id: str | None = None) -> RenderedImage:
            return replace(image, id=image_id or image.id, kind=kind, parent_id=first, parents=parents)

        if self.history is None:
            return [made(i) for i in images]
        kept = []
        for image in images:
            record = await self._record(image, who, kind, parents)
            # Best-of-N: the candidates it beat are kept too, each linked to it, none of them posted.
            losers = [await self._record(c, who, kind, parents, candidate_of=record.id) for c in image.candidates]
            candidates = tuple(made(c, r.id) for c, r in zip(image.candidates, losers, strict=True))
            kept.append(replace(made(image, record.id), candidates=candidates))
        return kept

    async def _record(
        self, image: RenderedImage, who: Requester, kind: ImageKind, parents: Lineage, candidate_of: str | None = None
    ) -> Generation:
        """One image into the history."""
        assert self.history is not None
        return await self.history.add(
            image.png,
            conversation=who.conversation,
            user_id=who.user_id,
            guild_id=who.guild_id,
            channel_id=who.channel_id,
            user_words=who.user_words,
            prompt=image.prompt,
            negative_prompt=image.negative_prompt,
            seed=image.seed,
            width=image.width,
            height=image.height,
            steps=image.steps,
            model=image.model,
            kind=kind,
            parents=parents,
            prompt_language=detect_language(image.prompt),
            score=image.score,
            candidate_of=candidate_of,
            nsfw=who.nsfw,
        )

    async def _audit(
        self, who: Requester, started: float, outcome: str, images: list[RenderedImage], verdict: str | None = None
    ) -> None:
        """One audit record per job: who, where, their words, the final prompt, parameters, outcome, time."""
        if self.history is None:
            return
        parameters = [
            {"seed": i.seed, "width": i.width, "height": i.height, "steps": i.steps, "guidance": i.guidance,
             "model": i.model, "negative_prompt": i.negative_prompt, "kind": i.kind, "parent_id": i.parent_id}
            for i in images
        ]  # fmt: skip
        await self.history.audit(
            AuditRecord(
                user_id=who.user_id,
                user_words=who.user_words,
                parameters=json.dumps(parameters, ensure_ascii=False),
                outcome=outcome,
                seconds=round(time.monotonic() - started, 3),
                guild_id=who.guild_id,
                channel_id=who.channel_id,
                source_id=who.source_id,
                final_prompt=images[0].prompt if images else None,
                verdict=verdict or ("checked" if self._blocks(who) else "nsfw-channel"),
                image_ids=",".join(i.id for i in images if i.id),
            )
        )


def said_by(who: Requester, images: list[RenderedImage]) -> list[RenderedImage]:
    """The backend's images carrying the asker's own words (shown beside the final prompt)."""
    return [replace(image, user_words=who.user_words) for image in images]


def viewer_of(who: Requester) -> Viewer:
    """The asker as the history's reference rule sees them."""
    return Viewer(user_id=who.user_id, conversation=who.conversation, nsfw=who.nsfw, replied_message_id=who.reply_to)


def scaled(parent: Generation, scale: float) -> str:
    """A picture's size times `scale`, in multiples of 8."""
    return f"{round(parent.width * scale / 8) * 8}x{round(parent.height * scale / 8) * 8}"
