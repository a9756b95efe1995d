"""The image service: a typed request in, typed images or a typed refusal or failure out.

Every way of asking for a picture goes through here: the LLM tools (`tools.image_tools`),
the buttons, `/imagine raw` and the CLI. They only adapt an `Outcome` (`tools.service.requests`)
to their surface (text for the model, a Discord message, lines in a terminal). Caps, the safety
blocklist, progress, the audit record and the image history are applied here, once.

Each operation plans its job first (validated, checked: a refusal comes at once), then the
dispatch (`tools.service.dispatch`) journals it, puts it in line and sends it. A journaled job
can be sent again after a restart (`resume`), under its id, and ends the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Protocol

from pydantic import ValidationError

from egaku.errors import (
    Blocked,
    EditNotPossible,
    Failure,
    InvalidImageRequest,
    JobCancelled,
    Refusal,
    TooManyCandidates,
    UnknownImage,
    WorkerRejected,
    WrongLanguage,
)
from egaku.i18n import Text, _
from tools.backends.base import ImageBackend, ImageUpscale
from tools.checks.blocklist import Blocklist
from tools.checks.languages import PromptLanguages, language_refusal
from tools.checks.limits import JobLimiter
from tools.pictures import OWN_SIZE_KINDS, ImageKind, Lineage, RenderedImage, edited
from tools.service.dispatch import Dispatch
from tools.service.keeping import audit, kept
from tools.service.outpainting import check_zoom, outpaint_fields, outpaint_kind, outpaints
from tools.service.reading import edit_of, pngs, read_again
from tools.service.references import APPROXIMATE_TEXT, FromPictures, ReferenceModel, blend_job, edit_job
from tools.service.rejections import in_users_words
from tools.service.requests import (
    Draw,
    Drawn,
    Edit,
    EditMode,
    Failed,
    Outcome,
    Planned,
    Refused,
    Requester,
    Upscale,
)
from tools.service.upscaling import UpscalerCheck, upscaled
from tools.service.watching import new_job_id
from tools.stores.history import Generation, History, Viewer
from tools.stores.journal import JobJournal, JournaledJob
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
        journal: JobJournal | None = None,
        retry_for_s: float = 0.0,
    ) -> None:
        self.backend = backend
        self.history = history
        self.concepts = concepts
        self.model = model  # the default preset; a user's or server's choice wins
        self.instruct_model = instruct_model
        self.references = references  # the preset that reads several pictures; None: reference edits are approximate
        self._dispatch = Dispatch(backend, journal=journal, limiter=limiter, retry_for_s=retry_for_s)
        self._blocklist = Blocklist(blocklist)
        self._safety_check = safety_check
        self._languages = languages or PromptLanguages()  # preset -> the languages its text encoder reads
        self._best_of = best_of  # the bot's default ([best_of] default); a server's default wins
        self.max_best_of = max_best_of
        self._upscaler = UpscalerCheck(backend)

    @property
    def journal(self) -> JobJournal | None:
        """The job journal, when jobs are journaled."""
        return self._dispatch.journal

    async def draw(self, who: Requester, request: Draw) -> Outcome:
        """Draw a new picture, from a description or from pictures (a blend)."""

        async def plan() -> Planned:
            if request.references:  # a blend: a new picture from pictures alone
                job = await blend_job(self._history(), viewer_of(who), self.references, request)
                return await self._from_pictures(who, job, request.reply)
            generation = self.generation_request(who, request)
            self._check_language(request.language, generation.model)
            return Planned(generation, "generate", reply=request.reply)

        return await self._run(who, plan)

    async def edit(self, who: Requester, request: Edit) -> Outcome:
        """Change an earlier image, keeping its seed, size and model unless told otherwise (`references.edit_job`:
        an edit that reads further pictures; without a model for them, the same seed and an approximate likeness)."""

        async def plan() -> Planned:
            history = self._history()
            parent = await history.resolve(request.ref, viewer_of(who))
            mode: EditMode = request.mode or ("instruct" if self.instruct_model else "regenerate")
            job = await edit_job(history, viewer_of(who), self.references, request, parent, mode, STRENGTH)
            if job is not None:
                return await self._from_pictures(who, job, request.reply)
            notice = None
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
            common: dict[str, object] = {
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
                fields = {**common, "model": model, **outpaint_fields(request)}
                outpaint = EditRequest.model_validate({k: v for k, v in fields.items() if v is not None})
                return await edit_of(history, outpaint, outpaint_kind(request), parent, request.reply, notice)
            self._check_language(request.language, self.instruct_model if mode == "instruct" else model)
            if mode == "regenerate":
                given = {**common, "model": model, "steps": parent.steps}
                generation = GenerationRequest.model_validate({k: v for k, v in given.items() if v is not None})
                return Planned(generation, mode, edited(parent.id), reply=request.reply, notice=notice)
            fields = {**common, "model": self.instruct_model if mode == "instruct" else model}
            if mode != "instruct":
                fields["strength"] = STRENGTH[mode] if request.scale == 1.0 else UPSCALE_STRENGTH
            if mode == "region":
                fields["mask_prompt"] = request.target
            edit = EditRequest.model_validate({k: v for k, v in fields.items() if v is not None})
            return await edit_of(history, edit, mode, parent, request.reply, notice)

        return await self._run(who, plan)

    async def _from_pictures(self, who: Requester, job: FromPictures, reply: str | None) -> Planned:
        """A job drawn from pictures: the pictures in order, with the whole new description, and its parents."""
        self._check_language(job.language, job.model)
        files = await pngs(self._history(), job.pictures)
        request = job.request(files, who.user_id, self._checks(who), who.options)
        return Planned(request, job.kind, job.parents, tuple(g.id for g in job.pictures), files, reply=reply)

    async def resume(self, job: JournaledJob, who: Requester | None = None) -> Outcome:
        """Send a journaled job again under its id (after a restart), and end it as it would have ended.

        `who` replaces the journaled asker (a watcher of the running bot; for a Retry, a fresh job id
        and the press as the answer address).
        """
        who = who or job.who

        async def plan() -> Planned:
            return await read_again(self._history(), job.planned, job.job_id) if job.planned.pictures else job.planned

        return await self._run(replace(who, job_id=who.job_id or job.job_id), plan)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: waiting in its server's line, waiting for the worker, or at the worker."""
        return await self._dispatch.cancel(job_id)

    async def upscale(self, who: Requester, request: Upscale) -> Outcome:
        """Enlarge an earlier image with the backend's upscaler, nothing redrawn; without one, draw the fallback."""
        if request.fallback is not None and await self.upscaler() is None:
            return await self.edit(who, request.fallback)

        async def work() -> Drawn:
            history = self._history()
            parent = await history.resolve(request.ref, viewer_of(who))
            self._check_safety(who, parent.prompt)
            job = UpscaleRequest(scale=request.scale, job_id=new_job_id())
            done = await self.backend.upscale(ImageUpscale(job, history.png(parent)))
            images = await self._keep(said_by(who, [upscaled(parent, done)]), who, "upscale", edited(parent.id))
            return Drawn(tuple(images))

        # Not journaled: an upscale is seconds of work; after a restart its press is answered with a
        # plain "ask again" (the press itself is journaled), not drawn again.
        return await self._ended(who, work, None)

    async def upscaler(self) -> str | None:
        """The backend's upscaler by name, None when it has none (asked now and then, not on every call)."""
        return await self._upscaler.name()

    def _history(self) -> History:
        """The history that edits find their pictures in."""
        if self.history is None:
            raise UnknownImage("there is no image history here")
        return self.history

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

    async def _taught(self, who: Requester, request: GenerationRequest) -> dict[str, object]:
        """The asker's server's words the prompt uses, for the worker to load for this request only."""
        if self.concepts is None:
            return {}
        used = await self.concepts.concepts_in(who.guild_id, request.prompt)
        return {"concepts": used} if used else {}

    async def _run(self, who: Requester, plan: Callable[[], Awaitable[Planned]]) -> Outcome:
        """Plan a job, send it (journaled, in line, within the caps), keep its pictures; the typed outcome."""
        job_id = who.job_id or new_job_id()

        async def work() -> Drawn:
            planned = await plan()
            self._check_safety(who, planned.request.prompt)
            update = {"job_id": job_id, **await self._taught(who, planned.request)}
            planned = replace(planned, request=planned.request.model_copy(update=update))
            try:
                images = said_by(who, await self._dispatch.send(who, job_id, planned))
            except WorkerRejected as exc:
                refusal = in_users_words(planned, exc)
                if refusal is exc:
                    raise
                raise refusal from exc
            return Drawn(tuple(await self._keep(images, who, planned.kind, planned.parents)), notice=planned.notice)

        return await self._ended(who, work, job_id if self._dispatch.journals(who) else None)

    async def _ended(self, who: Requester, work: Callable[[], Awaitable[Drawn]], journaled: str | None) -> Outcome:
        """Do a job's work, audit it, note its end in the journal (`journaled`: its id there); the typed outcome."""
        started = time.monotonic()
        try:
            drawn = await work()
        except ValidationError as exc:
            await self._audit(who, started, "invalid", [])
            return Refused(Text(InvalidImageRequest.user_text), invalid=True, detail=str(exc.errors()[0]["msg"]))
        except Refusal as exc:
            invalid = isinstance(exc, InvalidImageRequest)
            verdict = "blocked" if isinstance(exc, Blocked) else None
            await self._audit(who, started, "invalid" if invalid else type(exc).__name__, [], verdict=verdict)
            await self._journal_failed(journaled, exc)
            return Refused(exc.text, invalid=invalid, detail=exc.detail)
        except Failure as exc:
            await self._audit(who, started, type(exc).__name__, [])
            await self._journal_failed(journaled, exc)
            return Failed(exc, job_id=journaled)
        await self._audit(who, started, "ok", list(drawn.images))
        if journaled is not None and self.journal is not None:
            await self.journal.done(journaled, [i.id for i in drawn.images if i.id])
        return drawn

    async def _journal_failed(self, job_id: str | None, exc: Refusal | Failure) -> None:
        """Note a journaled job's failure (`job_id`: its id there), with the user's text."""
        if job_id is not None and self.journal is not None:
            retryable = isinstance(exc, Failure) and not cancelled(exc)
            await self.journal.failed(job_id, exc.text, retryable=retryable)

    async def _keep(
        self, images: list[RenderedImage], who: Requester, kind: ImageKind, parents: Lineage = ()
    ) -> list[RenderedImage]:
        """Record images in the history (when there is one), with their parents in order; return them with ids."""
        return await kept(self.history, images, who, kind, parents)

    async def _audit(
        self, who: Requester, started: float, outcome: str, images: list[RenderedImage], verdict: str | None = None
    ) -> None:
        """One audit record per job (`tools.service.keeping.audit`); the verdict says whether the blocklist ran."""
        verdict = verdict or ("checked" if self._blocks(who) else "nsfw-channel")
        await audit(self.history, who, round(time.monotonic() - started, 3), outcome, images, verdict)


def cancelled(exc: Exception) -> bool:
    """A job the asker cancelled: nothing to try again."""
    return isinstance(exc, JobCancelled)


def said_by(who: Requester, images: list[RenderedImage]) -> list[RenderedImage]:
    """The backend's images carrying the asker's own words (shown beside the final prompt)."""
    return [replace(image, user_words=who.user_words) for image in images]


def viewer_of(who: Requester) -> Viewer:
    """The asker as the history's reference rule sees them."""
    return Viewer(user_id=who.user_id, conversation=who.conversation, nsfw=who.nsfw, replied_message_id=who.reply_to)


def scaled(parent: Generation, scale: float) -> str:
    """A picture's size times `scale`, in multiples of 8."""
    return f"{round(parent.width * scale / 8) * 8}x{round(parent.height * scale / 8) * 8}"
