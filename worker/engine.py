"""The render engine: plans requests against the presets and renders batches of them.

Everything here that touches torch is blocking. The scheduler calls `run_batch`
from its single executor thread, so the event loop stays free and the GPU sees
one batch at a time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from worker.errors import BadRequest, ContentBlocked, ModelUnavailable, OutOfMemory, WorkerError
from worker.families import Family, family_for
from worker.families.base import ModeInputs
from worker.images import encode_image, read_image, read_with_alpha
from worker.pipelines import Placement, check_preset, choose_placement, load_pipeline
from worker.protocol import (
    MAX_SEED,
    MAX_TEACH_IMAGES,
    MIN_TEACH_IMAGES,
    QUALITY_TIER,
    AdapterChoice,
    ConceptChoice,
    DescriptionResponse,
    EditRequest,
    GenerationRequest,
    GenerationResponse,
    ImageData,
    Mode,
    Size,
    TeachRequest,
    Usage,
    UsedParameters,
    image_tokens,
    parse_size,
    size_for_aspect,
    steps_for_quality,
    with_style,
)
from worker.scheduler import Cancelled, Job, Progress
from worker.scoring import check_scorer
from worker.settings import ModelPreset, WorkerSettings
from worker.teach import TeachPlan, Trainer, fit_picture

log = logging.getLogger(__name__)

Loader = Callable[[ModelPreset, Placement, Path], Any]


class _StopRender(Exception):
    """Raised from the step callback to cancel a pipeline that cannot be interrupted."""


def partial_steps(total: int, count: int) -> list[int]:
    """The steps (1-based, before the last) after which OpenAI's partial images are sent, evenly spread."""
    return sorted({round(total * (i + 1) / (count + 1)) for i in range(count)} & set(range(1, total)))


@dataclass(frozen=True)
class Plan:
    """A request checked against the presets: everything needed to render it."""

    model: str
    preset: ModelPreset
    size: Size
    steps: int
    guidance: float
    seeds: tuple[int, ...]
    prompt: str
    negative: str | None
    output_format: str
    mode: Mode = "generate"
    strength: float | None = None
    image: Image.Image | None = field(default=None, compare=False)
    mask: Image.Image | None = field(default=None, compare=False)
    mask_prompt: str | None = None
    adapters: tuple[AdapterChoice, ...] = ()
    concepts: tuple[ConceptChoice, ...] = ()  # taught words, loaded for this batch only
    style: str | None = None
    safety_check: bool = False
    job_id: str = ""
    quality: str = "medium"  # the tier reported back (OpenAI's `quality`)
    compression: int | None = None  # JPEG / WebP quality (OpenAI's `output_compression`)
    partial_images: int = 0  # OpenAI's partial images, sent while streaming
    input_images: int = 0  # uploads read (for `usage`)
    best_of: int = 1  # > 1: the seeds are candidates, scored against the prompt; the best is marked

    @property
    def family(self) -> Family:
        """The model family that renders this plan."""
        return family_for(self.preset.family)

    @property
    def key(self) -> Hashable:
        """Plans with equal keys can share one batch."""
        if self.mode != "generate":
            return ("edit", self.job_id)
        return (self.model, self.size, self.steps, self.guidance, self.negative is None, self.adapters, self.concepts)


class Engine:
    """Holds the loaded pipelines; plans and renders."""

    def __init__(self, settings: WorkerSettings, loader: Loader = load_pipeline) -> None:
        self._settings = settings
        self._loader = loader
        self._placement = choose_placement(settings.device, settings.dtype)
        self._pipes: dict[tuple[str, Mode], Any] = {}
        self._masker: Any = None
        self._checker: Any = None
        self._captioner: Any = None
        self._scorer: Any = None
        self._adapters_loaded: set[tuple[str, str]] = set()

    @property
    def model_names(self) -> list[str]:
        """The presets this engine serves."""
        return sorted(self._settings.models)

    @property
    def cache_dir(self) -> Path:
        """Where built-in test models are built."""
        return Path(self._settings.cache_dir).expanduser()

    def check(self) -> None:
        """Refuse to start, naming the preset, when a preset's class, package or family is wrong."""
        for name, preset in self._settings.models.items():
            check_preset(name, preset)
        check_scorer(self._settings.scorer)
        if self._settings.scorer_processor:
            check_scorer(self._settings.scorer_processor)

    def load(self, name: str | None = None) -> None:
        """Load one preset (the default unless named), and warm it up if configured."""
        name = name or self._settings.default_model
        preset = self._settings.models[name]
        family = family_for(preset.family)
        if (name, family.base) in self._pipes:
            return
        started = time.perf_counter()
        try:
            pipe = self._loader(preset, self._placement, self.cache_dir)
        except ModelUnavailable as exc:
            raise ModelUnavailable(f"model preset {name!r}: {exc.message}") from exc
        if self._settings.channels_last:
            getattr(pipe, family.denoiser).to(memory_format=torch.channels_last)
        if self._settings.compile:
            setattr(pipe, family.denoiser, torch.compile(getattr(pipe, family.denoiser), fullgraph=True))
        self._pipes[(name, family.base)] = pipe
        if self._settings.warmup:
            # The first call pays for kernel selection (and compilation); users should not.
            with torch.inference_mode():
                pipe(**family.warmup_kwargs(preset))
        log.info("loaded %s in %.1fs on %s", name, time.perf_counter() - started, self._placement)

    @property
    def loaded(self) -> list[str]:
        """The presets whose pipelines are in memory now."""
        return sorted({name for name, _mode in self._pipes})

    def unload(self, name: str) -> None:
        """Drop a preset's pipelines and adapters (Serve evicted it); it loads again on its next use."""
        for key in [k for k in self._pipes if k[0] == name]:
            del self._pipes[key]
        self._adapters_loaded = {(m, a) for m, a in self._adapters_loaded if m != name}
        self._free_memory()
        log.info("unloaded %s", name)

    def _pipe(self, name: str, mode: Mode) -> Any:
        self.load(name)
        if (name, mode) not in self._pipes:
            family = family_for(self._settings.models[name].family)
            # from_pipe shares the loaded weights: no second copy in GPU memory.
            self._pipes[(name, mode)] = family.derive(self._pipes[(name, family.base)], mode)
        return self._pipes[(name, mode)]

    # -- planning (cheap, on the event loop) --------------------------------
    def _preset(self, model: str | None) -> tuple[str, ModelPreset]:
        name = self._settings.resolve(model)
        if name is None:
            known = self._settings.served_names
            raise BadRequest(f"unknown model {model!r}; available: {known}", param="model")
        return name, self._settings.models[name]

    def _size(self, request: GenerationRequest, preset: ModelPreset, name: str, default: Size) -> Size:
        try:
            if request.size is not None and request.size != "auto":
                size = parse_size(request.size)
            elif request.aspect is not None:
                size = size_for_aspect(request.aspect, preset.base_size)
            else:
                size = default
        except ValueError as exc:
            raise BadRequest(str(exc), param="size") from exc
        if size.width * size.height > preset.max_pixels:
            raise BadRequest(f"{size} is larger than model {name!r} allows ({preset.max_pixels} pixels)", param="size")
        multiple = family_for(preset.family).size_multiple
        if size.width % multiple or size.height % multiple:
            if request.size is not None:
                raise BadRequest(f"model {name!r} needs width and height in multiples of {multiple}", param="size")
            size = Size(width=size.width // multiple * multiple, height=size.height // multiple * multiple)
        return size

    def plan(self, request: GenerationRequest, job_id: str = "") -> Plan:
        """Check a generation request against the presets; raise BadRequest with a clear message."""
        name, preset = self._preset(request.model)
        family = family_for(preset.family)
        if "generate" not in family.modes and not isinstance(request, EditRequest):
            raise BadRequest(f"model {name!r} only edits images: use /v1/images/edits", param="model")
        if request.safety_check and not self._settings.safety_checker:
            raise BadRequest("this worker has no safety checker configured", param="safety_check")
        if request.background == "transparent":
            raise BadRequest(
                f"model {name!r} cannot make transparent backgrounds; use background=opaque or auto", param="background"
            )
        # OpenAI's moderation=auto is the safety checker where one is configured; low skips it.
        safety = request.safety_check or (request.moderation == "auto" and bool(self._settings.safety_checker))
        for choice in request.adapters:
            if choice.name not in self._settings.adapters:
                known = sorted(self._settings.adapters)
                raise BadRequest(f"unknown adapter {choice.name!r}; available: {known}", param="adapters")
            kind = self._settings.adapters[choice.name].kind
            if kind not in family.adapter_kinds:
                message = f"model {name!r} ({family.name}) cannot use the {kind} {choice.name!r}"
                raise BadRequest(message, param="adapters")
        if request.best_of > self._settings.max_best_of:
            raise BadRequest(
                f"best_of is {request.best_of}; this worker renders at most {self._settings.max_best_of} candidates",
                param="best_of",
            )
        self._check_concepts(request.concepts, name, family)
        size = self._size(request, preset, name, preset.base_size)
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        prompt, negative = prompts_for(request, family)
        return Plan(
            model=name,
            preset=preset,
            size=size,
            steps=request.steps or steps_for_quality(preset.steps, request.quality),
            guidance=request.guidance if request.guidance is not None else preset.guidance,
            seeds=tuple((seed + i) % (MAX_SEED + 1) for i in range(max(request.n, request.best_of))),
            prompt=prompt,
            negative=negative,
            output_format=request.output_format,
            adapters=tuple(request.adapters),
            concepts=tuple(request.concepts),
            style=request.style,
            safety_check=safety,
            job_id=job_id,
            quality=QUALITY_TIER.get(request.quality or "auto", request.quality or "medium"),
            compression=request.output_compression,
            partial_images=(request.partial_images or 0) if request.stream else 0,
            best_of=request.best_of,
        )

    def plan_edit(
        self,
        request: EditRequest,
        image: bytes,
        mask: bytes | None,
        job_id: str = "",
        *,
        extra_images: Sequence[bytes] = (),
    ) -> Plan:
        """Check an edit: the upload is decoded safely and fitted to the preset; the mask follows OpenAI.

        OpenAI's mask paints where its alpha is 0; with no mask, where the image itself is
        transparent. `mask_format="luminance"` (egaku's own client) paints where a greyscale mask is white.
        """
        if request.best_of > 1:
            raise BadRequest("best_of is for new pictures (/v1/images/generations), not edits", param="best_of")
        base = self.plan(request.model_copy(update={"prompt": request.prompt or "x"}), job_id)
        name, preset = base.model, base.preset
        if extra_images:
            # No family here takes several pictures at once; say so rather than drop them.
            count = 1 + len(extra_images)
            raise BadRequest(f"model {name!r} edits one image at a time; got {count}", param="image")
        picture, alpha = read_with_alpha(image)
        family = base.family
        default = fit_size(picture.size, preset.max_pixels, family.size_multiple)
        size = self._size(request, preset, name, default)
        mask_image = None
        if mask is not None and request.mask_format == "luminance":
            mask_image = read_image(mask, mode="L")
        elif mask is not None:
            mask_image = paint_where_transparent(read_with_alpha(mask)[1], picture.size, "mask")
        elif alpha is not None and alpha.getextrema()[0] == 0:
            mask_image = paint_where_transparent(alpha, picture.size, "image")
        if picture.size != (size.width, size.height):
            picture = picture.resize((size.width, size.height), Image.Resampling.LANCZOS)
        if mask_image is not None and mask_image.size != picture.size:
            # A hard (OpenAI) mask stays hard; a greyscale one is smoothed.
            hard = request.mask_format == "alpha"
            resample = Image.Resampling.NEAREST if hard else Image.Resampling.BILINEAR
            mask_image = mask_image.resize(picture.size, resample)
        inpaint = mask_image is not None or request.mask_prompt is not None
        prompt, negative = prompts_for(request, family)
        mode = family.edit_mode(masked=inpaint)
        return replace(
            base,
            size=size,
            # img2img runs steps * strength steps; never let that round down to none.
            steps=max(base.steps, math.ceil(1 / request.strength)) if mode != "instruct" else base.steps,
            prompt=prompt,
            negative=negative,
            mode=mode,
            strength=None if mode == "instruct" else request.strength,
            image=picture,
            mask=mask_image,
            mask_prompt=request.mask_prompt,
            input_images=1,
        )

    def _check_concepts(self, concepts: Sequence[ConceptChoice], name: str, family: Family) -> None:
        """Taught words need a family that reads textual inversions, distinct tokens and a file in base64."""
        if not concepts:
            return
        if "textual_inversion" not in family.adapter_kinds:
            raise BadRequest(f"model {name!r} ({family.name}) cannot use taught words", param="concepts")
        if len({c.token for c in concepts}) < len(concepts):
            raise BadRequest("each taught word may be given once", param="concepts")
        for concept in concepts:
            try:
                base64.b64decode(concept.embedding, validate=True)
            except binascii.Error as exc:
                raise BadRequest(f"the file of {concept.token} is not base64", param="concepts") from exc

    def plan_teach(self, request: TeachRequest, images: Sequence[bytes], job_id: str = "") -> TeachPlan:
        """Check a training request: 3-10 readable pictures, a family that can learn words, bounded steps."""
        if not MIN_TEACH_IMAGES <= len(images) <= MAX_TEACH_IMAGES:
            raise BadRequest(
                f"teaching a word takes {MIN_TEACH_IMAGES} to {MAX_TEACH_IMAGES} pictures; got {len(images)}",
                param="image",
            )
        name, preset = self._preset(request.model)
        family = family_for(preset.family)
        if family.teach_refusal is not None:
            raise BadRequest(f"model {name!r} ({family.name}) cannot learn new words: {family.teach_refusal}",
                             param="model")  # fmt: skip
        teach = self._settings.teach
        steps = request.steps or teach.steps
        if steps > teach.max_steps:
            raise BadRequest(f"steps: at most {teach.max_steps} training steps here", param="steps")
        size = fit_size((preset.width, preset.height), min(preset.max_pixels, teach.max_side**2), family.size_multiple)
        pictures = tuple(fit_picture(read_image(data), size) for data in images)  # the worker trusts no client
        return TeachPlan(
            model=name,
            preset=preset,
            token=request.token,
            init_word=request.init_word,
            pictures=pictures,
            size=size,
            steps=steps,
            learning_rate=request.learning_rate or teach.learning_rate,
            seed=request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1),
            max_seconds=teach.max_seconds,
            job_id=job_id,
        )

    def trainer(self, plan: TeachPlan) -> Trainer:
        """A textual-inversion run on the preset's loaded pipeline (blocking: the render thread calls it)."""
        return Trainer(self._pipe(plan.model, plan.family.base), plan)

    @contextlib.contextmanager
    def _taught_words(self, pipe: Any, plan: Plan) -> Iterator[None]:
        """The plan's taught words loaded into the pipeline while its batch renders, and out again after."""
        loaded: list[str] = []
        try:
            for concept in plan.concepts:
                path = self._concept_file(base64.b64decode(concept.embedding))
                try:
                    plan.family.load_textual_inversion(pipe, str(path), concept.token)
                except (ValueError, KeyError, OSError) as exc:  # a file for another model, or not one at all
                    with contextlib.suppress(ValueError):  # SDXL: the first encoder may have taken it
                        plan.family.unload_textual_inversion(pipe, concept.token)
                    raise BadRequest(f"the file of {concept.token} does not fit model {plan.model!r}: {exc}",
                                     param="concepts") from exc  # fmt: skip
                loaded.append(concept.token)
            yield
        finally:
            for token in loaded:
                plan.family.unload_textual_inversion(pipe, token)

    def _concept_file(self, data: bytes) -> Path:
        """A taught word's file on disk, by content hash (the family's loader reads files)."""
        path = self.cache_dir / "concepts" / f"{hashlib.sha256(data).hexdigest()}.safetensors"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)
        return path

    # -- rendering (blocking, in the executor thread) -----------------------
    def masker(self) -> Any:
        """The CLIPSeg masker, loaded on first use."""
        if self._masker is None:
            from worker.masks import TextMasker

            self._masker = TextMasker(self._settings.segmenter, self._placement, self.cache_dir)
        return self._masker

    def describe(self, image: bytes) -> DescriptionResponse:
        """An English prompt for an uploaded image (/describe); the captioner loads on first use."""
        picture = read_image(image)  # checked again here: the worker trusts no client
        started = time.perf_counter()
        if self._captioner is None:
            from worker.captions import Captioner

            try:
                self._captioner = Captioner(self._settings.captioner, self._placement, self.cache_dir)
            except (OSError, ValueError) as exc:  # not on disk, no hub, or a bad id: name the setting to fix
                log.error("could not load the captioner %r", self._settings.captioner, exc_info=exc)
                raise WorkerError(f"the captioner {self._settings.captioner!r} could not be loaded") from exc
        prompt = self._captioner.describe(picture)
        if not prompt:
            raise BadRequest("couldn't find words for that image", param="image")
        timing = {"describe_s": round(time.perf_counter() - started, 4)}
        return DescriptionResponse(prompt=prompt, model=self._settings.captioner, timings=timing)

    def render(self, plan: Plan) -> GenerationResponse:
        """Render one plan alone (no queue); raises on failure."""
        job: Job[GenerationResponse] = Job(id=plan.job_id or "direct", user="", plan=plan, key=plan.key)
        (outcome,) = self.run_batch([job], lambda _job, _event: None)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run_batch(
        self, jobs: Sequence[Job[GenerationResponse]], report: Callable[[Job[GenerationResponse], Progress], None]
    ) -> list[GenerationResponse | BaseException]:
        """Render compatible jobs together; prompts that need more text windows run in their own group."""
        outcomes: dict[int, GenerationResponse | BaseException] = {}
        groups: dict[int, list[int]] = {}
        for index, job in enumerate(jobs):
            try:
                groups.setdefault(self._prompt_group(job.plan), []).append(index)
            except Exception as exc:
                outcomes[index] = exc
        for indices in groups.values():
            group = [jobs[i] for i in indices]
            for i, outcome in zip(indices, self._run_group(group, report), strict=True):
                outcomes[i] = outcome
        return [outcomes[i] for i in range(len(jobs))]

    def _prompt_group(self, plan: Plan) -> int:
        """Plans whose prompts encode alike share a group; a prompt past the model's limit is a 400."""
        pipe = self._pipe(plan.model, plan.mode)
        return plan.family.prompt_group(pipe, [plan.prompt, plan.negative or ""], plan.preset)

    def _run_group(
        self, jobs: Sequence[Job[GenerationResponse]], report: Callable[[Job[GenerationResponse], Progress], None]
    ) -> list[GenerationResponse | BaseException]:
        try:
            return self._render_group(jobs, report)
        except torch.OutOfMemoryError:
            self._free_memory()
            if len(jobs) > 1:
                # Only the job that does not fit should fail: retry each alone.
                return [self._run_group([job], report)[0] for job in jobs]
            return [OutOfMemory("out of GPU memory; try a smaller size or fewer images")]
        except BadRequest as exc:
            return [exc] * len(jobs)
        except _StopRender:
            return [Cancelled(f"job {job.id} was cancelled") for job in jobs]

    def _render_group(
        self, jobs: Sequence[Job[GenerationResponse]], report: Callable[[Job[GenerationResponse], Progress], None]
    ) -> list[GenerationResponse | BaseException]:
        started = time.perf_counter()
        plans: list[Plan] = [job.plan for job in jobs]
        first = plans[0]
        family = first.family
        pipe = self._pipe(first.model, first.mode)
        self._use_adapters(pipe, first)
        prompts = [p.prompt for p in plans for _ in p.seeds]
        negatives = [p.negative for p in plans for _ in p.seeds]
        generators = [torch.Generator(device="cpu").manual_seed(s) for p in plans for s in p.seeds]
        owners = [index for index, p in enumerate(plans) for _ in p.seeds]
        on_step_end = self._progress(jobs, owners, first, started, report)
        mask = first.mask
        if first.mode == "inpaint" and mask is None:
            mask = self.masker().mask(first.image, first.mask_prompt)
        with self._taught_words(pipe, first):
            kwargs: dict[str, Any] = {
                "num_inference_steps": first.steps,
                family.guidance_argument: first.guidance,
                "generator": generators,
                **family.callback_kwargs(pipe, on_step_end),
                **family.prompt_kwargs(pipe, prompts, negatives, self._prompt_group(first), first.preset),
            }
            inputs = ModeInputs(first.size, len(prompts), first.image, mask, first.strength)
            kwargs.update(family.mode_kwargs(first.mode, inputs))
            with torch.inference_mode():
                result = pipe(**kwargs)
        images = list(result.images)
        if first.mode == "inpaint":
            # The VAE round trip shifts every pixel a little: keep the original outside the mask, exactly.
            assert first.image is not None and mask is not None
            images = [Image.composite(out, first.image, mask) for out in images]
        rendered = time.perf_counter()
        flags = self._safety_flags(plans, images)
        outcomes: list[GenerationResponse | BaseException] = []
        cursor = 0
        for plan in plans:
            own = images[cursor : cursor + len(plan.seeds)]
            flagged = any(flags[cursor : cursor + len(plan.seeds)])
            cursor += len(plan.seeds)
            if flagged:
                outcomes.append(ContentBlocked("the safety checker blocked this picture", param="prompt"))
                continue
            try:
                scores = self._scores(plan, own)
            except WorkerError as exc:
                outcomes.append(exc)  # only this request needed the scorer
                continue
            tokens = plan.family.text_tokens(pipe, plan.prompt)
            outcomes.append(self._response(plan, own, started, rendered, tokens, scores))
        return outcomes

    def _scores(self, plan: Plan, images: list[Image.Image]) -> list[float] | None:
        """Best-of-N: each candidate's score against the final prompt; None for an ordinary request."""
        if plan.best_of < 2:
            return None
        if self._scorer is None:
            from worker.scoring import Scorer

            s = self._settings
            try:
                self._scorer = Scorer(s.scorer, s.scorer_processor, self._placement, self.cache_dir)
            except (OSError, ValueError) as exc:  # not on disk, no hub, or not a CLIP model: name the setting
                log.error("could not load the scorer %r", s.scorer, exc_info=exc)
                raise WorkerError(f"the best-of scorer {s.scorer!r} could not be loaded") from exc
        scores: list[float] = self._scorer.scores(images, plan.prompt)
        return scores

    def _safety_flags(self, plans: list[Plan], images: list[Image.Image]) -> list[bool]:
        """Per image: flagged by the checker (only for plans that asked for the check)."""
        wanted = [plan.safety_check for plan in plans for _ in plan.seeds]
        if not any(wanted):
            return [False] * len(images)
        if self._checker is None:
            from worker.safety import SafetyChecker

            self._checker = SafetyChecker(self._settings.safety_checker or "", self._placement, self.cache_dir)
        verdicts = self._checker.flagged(images)
        return [want and verdict for want, verdict in zip(wanted, verdicts, strict=True)]

    def _progress(
        self,
        jobs: Sequence[Job[GenerationResponse]],
        owners: list[int],
        plan: Plan,
        started: float,
        report: Callable[[Job[GenerationResponse], Progress], None],
    ) -> Callable[..., dict[str, Any]]:
        every = self._settings.preview_every
        partials: dict[int, list[int]] = {}

        def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            done = step + 1
            total = pipe.num_timesteps if hasattr(pipe, "num_timesteps") else plan.steps
            elapsed = time.perf_counter() - started
            eta = elapsed / done * max(0, total - done)
            for job in jobs:
                report(job, Progress("step", {"step": done, "steps": total, "eta_s": round(eta, 3)}))
            if every and done % every == 0 and done < total and "latents" in tensors:
                for index, job in enumerate(jobs):
                    sample = owners.index(index)
                    preview = plan.family.preview(tensors["latents"][sample], plan.size)
                    report(job, Progress("preview", {"step": done, "b64_png": base64.b64encode(preview).decode()}))
            for index, job in enumerate(jobs):
                wanted = job.plan.partial_images
                if not wanted or "latents" not in tensors:
                    continue
                at = partials.setdefault(index, partial_steps(total, wanted))
                if done in at:
                    latents = tensors["latents"][owners.index(index)]
                    report(job, Progress("partial", self._partial(job.plan, latents, at.index(done))))
            if all(job.cancel_flag.is_set() for job in jobs):
                if not plan.family.interruptible:
                    raise _StopRender  # the loop has no interrupt check: leave it from here
                pipe._interrupt = True  # diffusers stops before the next step
            return tensors

        return on_step_end

    def _partial(self, plan: Plan, latents: torch.Tensor, index: int) -> dict[str, Any]:
        """One OpenAI partial image: the latent preview at the output's size and format."""
        picture = plan.family.preview_picture(latents, plan.size).resize(
            (plan.size.width, plan.size.height), Image.Resampling.BILINEAR
        )
        encoded = encode_image(picture, plan.output_format, plan.compression or 90)
        return {
            "partial_image_index": index,
            "b64_json": base64.b64encode(encoded).decode("ascii"),
            "background": "opaque",
            "output_format": plan.output_format,
            "quality": plan.quality,
            "size": f"{plan.size.width}x{plan.size.height}",
        }

    def _response(
        self,
        plan: Plan,
        images: list[Image.Image],
        started: float,
        rendered: float,
        prompt_tokens: int,
        scores: list[float] | None = None,
    ) -> GenerationResponse:
        data = []
        for index, (seed, image) in enumerate(zip(plan.seeds, images, strict=True)):
            used = UsedParameters(
                model=plan.model,
                width=image.width,
                height=image.height,
                steps=plan.steps,
                guidance=plan.guidance,
                seed=seed,
                negative_prompt=plan.negative,
                strength=plan.strength,
                mode=plan.mode,
                adapters=list(plan.adapters),
                concepts=[c.token for c in plan.concepts],
                style=plan.style,
                safety_checked=plan.safety_check,
            )
            encoded = encode_image(image, plan.output_format, plan.compression or 90)
            data.append(
                ImageData(b64_json=base64.b64encode(encoded).decode("ascii"), revised_prompt=plan.prompt, seed=seed,
                          parameters=used, score=None if scores is None else scores[index])
            )  # fmt: skip
        given = image_tokens(plan.size.width, plan.size.height) * plan.input_images
        made = sum(image_tokens(image.width, image.height) for image in images)
        return GenerationResponse(
            created=int(time.time()),
            data=data,
            output_format=plan.output_format,  # type: ignore[arg-type]
            quality=plan.quality,  # type: ignore[arg-type]
            size=f"{plan.size.width}x{plan.size.height}",
            usage=Usage.of(prompt_tokens, given, made),
            job_id=plan.job_id or None,
            timings={"render_s": rendered - started, "encode_s": time.perf_counter() - rendered},
            chosen=None if scores is None else max(range(len(scores)), key=scores.__getitem__),
        )

    def _use_adapters(self, pipe: Any, plan: Plan) -> None:
        """Load the plan's adapters on first use (cached), and switch LoRAs on or off for this batch."""
        loras = []
        for choice in plan.adapters:
            spec = self._settings.adapters[choice.name]
            if (plan.model, choice.name) not in self._adapters_loaded:
                log.info("loading %s %s for %s", spec.kind, choice.name, plan.model)
                if spec.kind == "lora":
                    pipe.load_lora_weights(spec.source, weight_name=spec.weight_name, adapter_name=choice.name)
                else:
                    plan.family.load_textual_inversion(pipe, spec.source, spec.token or "")
                self._adapters_loaded.add((plan.model, choice.name))
            if spec.kind == "lora":
                loras.append(choice)
        any_lora = any(m == plan.model and self._settings.adapters[n].kind == "lora" for m, n in self._adapters_loaded)
        if loras:
            pipe.enable_lora()
            pipe.set_adapters([c.name for c in loras], adapter_weights=[c.scale for c in loras])
        elif any_lora:
            pipe.disable_lora()

    def _free_memory(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def prompts_for(request: GenerationRequest, family: Family) -> tuple[str, str | None]:
    """The request's prompt and negative prompt with its style; no negative for a model that ignores it."""
    prompt, negative = with_style(request.prompt, request.negative_prompt, request.style)
    return prompt, negative if family.negative_prompts else None


def paint_where_transparent(alpha: Image.Image | None, size: tuple[int, int], param: str) -> Image.Image:
    """OpenAI's mask: an "L" image, white (paint) where alpha is 0 and black (keep) elsewhere."""
    if alpha is None:
        raise BadRequest(
            "the mask needs an alpha channel: transparent pixels (alpha 0) mark where to paint", param=param
        )
    if alpha.size != size:
        raise BadRequest(f"the mask is {alpha.size[0]}x{alpha.size[1]}; it must match the image's size", param=param)
    paint = alpha.point(lambda a: 255 if a == 0 else 0)
    if paint.getextrema()[1] == 0:
        raise BadRequest("the mask has no transparent pixels, so there is nothing to edit", param=param)
    return paint


def fit_size(size: tuple[int, int], max_pixels: int, multiple: int = 8) -> Size:
    """An upload's size scaled down to max_pixels and to multiples of `multiple` (8 or the family's)."""
    width, height = size
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    least = max(32, multiple)
    return Size(
        width=max(least, int(width * scale) // multiple * multiple),
        height=max(least, int(height * scale) // multiple * multiple),
    )
