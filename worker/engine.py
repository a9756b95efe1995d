"""The render engine: plans requests against the presets and renders batches of them.

About 400 lines on purpose: planning and the batch loop share the presets and the loaded pipelines.

Everything here that touches torch is blocking. The scheduler calls `run_batch`
from its single executor thread, so the event loop stays free and the GPU sees
one batch at a time. The engine plans, batches and calls the pipeline; the rest lives
in rooms of its own: the plan's rules (`plan.py`), adapters and taught words
(`adapters.py`), the helper models (`auxiliary.py`), progress (`progress.py`) and
the response body (`responses.py`).
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from worker.adapters import Adapters
from worker.auxiliary import AuxiliaryModels
from worker.errors import BadRequest, ContentBlocked, JobCancelled, ModelUnavailable, OutOfMemory, WorkerError
from worker.families import family_for
from worker.families.base import ModeInputs
from worker.images import read_image, read_with_alpha
from worker.inpaint import keep_outside, paint_mask
from worker.measures import GpuMemory
from worker.pipelines import Placement, check_preset, choose_placement, device_memory, load_pipeline
from worker.plan import (
    Plan,
    check_concepts,
    check_image_count,
    drawn_from,
    edit_mask,
    fit_size,
    outpainted,
    prompts_for,
    read_references,
    reference_fields,
    size_for,
)
from worker.progress import Report, StopRender, step_reporter
from worker.protocol import (
    MAX_SEED,
    MAX_TEACH_IMAGES,
    MIN_TEACH_IMAGES,
    QUALITY_TIER,
    DescriptionResponse,
    EditRequest,
    GenerationRequest,
    GenerationResponse,
    Mode,
    TeachRequest,
    UpscaleResponse,
    steps_for_quality,
)
from worker.responses import response_for
from worker.scheduler import Job
from worker.scoring import check_scorer
from worker.settings import ModelPreset, WorkerSettings
from worker.teach import TeachPlan, Trainer, fit_picture
from worker.upscale.network import check_upscaler
from worker.upscale.plan import UpscalePlan

log = logging.getLogger(__name__)

Loader = Callable[[ModelPreset, Placement, Path], Any]


class Engine:
    """Holds the loaded pipelines; plans and renders."""

    def __init__(self, settings: WorkerSettings, loader: Loader = load_pipeline) -> None:
        self._settings = settings
        self._loader = loader
        self._placement = choose_placement(settings.device, settings.dtype)
        self._pipes: dict[tuple[str, Mode], Any] = {}
        self.aux = AuxiliaryModels(settings, self._placement, self.cache_dir)
        self._adapters = Adapters(settings, self.cache_dir)

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
        if self._settings.upscaler:
            check_upscaler(self._settings.upscaler)

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

    def memory(self) -> GpuMemory | None:
        """The render device's memory (CUDA only), for /metrics."""
        return device_memory(self._placement)

    def unload(self, name: str) -> None:
        """Drop a preset's pipelines and adapters (Serve evicted it); it loads again on its next use."""
        for key in [k for k in self._pipes if k[0] == name]:
            del self._pipes[key]
        self._adapters.forget(name)
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

    def plan(self, request: GenerationRequest, job_id: str = "") -> Plan:
        """Check a generation request against the presets; raise BadRequest with a clear message."""
        name, preset = self._preset(request.model)
        family = family_for(preset.family)
        if "generate" not in family.modes and not isinstance(request, EditRequest) and not request.references:
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
        check_concepts(request.concepts, name, family)
        size = size_for(request, preset, name, preset.base_size)
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        prompt, negative = prompts_for(request, family)
        # A new picture drawn from pictures: decoding is CPU work, so callers with references run this off the loop.
        references = drawn_from(request, preset, name, family)
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
            mode=family.reference_mode if references else "generate",
            **reference_fields(request, preset, family, references),
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
        picture, alpha = read_with_alpha(image)
        if request.outpaints:
            if extra_images:
                raise BadRequest("zoom and pan take one picture; send no references", param="image")
            return outpainted(base, request, picture, alpha, mask_sent=mask is not None)
        family = base.family
        # Unless the request names a size, an edit is drawn within the preset's own size, never its cap:
        # a 16 MP upload must not hold the render thread at the model's largest size.
        budget = min(preset.max_pixels, preset.base_size.width * preset.base_size.height)
        default = fit_size(picture.size, budget, family.size_multiple)
        size = size_for(request, preset, name, default)
        mask_image = edit_mask(request, mask, alpha, picture.size, (size.width, size.height))
        if picture.size != (size.width, size.height):
            picture = picture.resize((size.width, size.height), Image.Resampling.LANCZOS)
        inpaint = mask_image is not None or request.mask_prompt is not None
        prompt, negative = prompts_for(request, family)
        mode = family.edit_mode(masked=inpaint)
        # Counted before any reference is decoded; the mask belongs to the first picture.
        check_image_count(family, preset, name, mode, 1 + len(extra_images), editing=True)
        references = read_references(extra_images, preset, family)
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
            **reference_fields(request, preset, family, references),
        )

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

    # -- rendering (blocking, in the executor thread) -----------------------
    def describe(self, image: bytes) -> DescriptionResponse:
        """An English prompt for an uploaded image (/describe); the captioner loads on first use."""
        return self.aux.describe(read_image(image))  # checked again here: the worker trusts no client

    def upscale(self, plan: UpscalePlan, stop: threading.Event | None = None) -> UpscaleResponse:
        """Enlarge a picture with the upscaler (loaded on first use); `stop` ends it between tiles."""
        return self.aux.upscale(plan, stop)

    def render(self, plan: Plan) -> GenerationResponse:
        """Render one plan alone (no queue); raises on failure."""
        job: Job[GenerationResponse] = Job(id=plan.job_id or "direct", user="", plan=plan, key=plan.key)
        (outcome,) = self.run_batch([job], lambda _job, _event: None)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run_batch(
        self, jobs: Sequence[Job[GenerationResponse]], report: Report
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
        self, jobs: Sequence[Job[GenerationResponse]], report: Report
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
        except StopRender:
            return [JobCancelled() for _job in jobs]

    def _render_group(
        self, jobs: Sequence[Job[GenerationResponse]], report: Report
    ) -> list[GenerationResponse | BaseException]:
        started = time.perf_counter()
        plans: list[Plan] = [job.plan for job in jobs]
        first = plans[0]
        family = first.family
        pipe = self._pipe(first.model, first.mode)
        self._adapters.use(pipe, first)
        prompts = [p.prompt for p in plans for _ in p.seeds]
        negatives = [p.negative for p in plans for _ in p.seeds]
        generators = [torch.Generator(device="cpu").manual_seed(s) for p in plans for s in p.seeds]
        owners = [index for index, p in enumerate(plans) for _ in p.seeds]
        on_step_end = step_reporter(jobs, owners, first, started, report, self._settings.preview_every)
        mask = first.mask
        if first.mode == "inpaint" and mask is None:
            assert first.image is not None and first.mask_prompt is not None  # plan_edit: inpaint has one
            mask = self.aux.mask(first.image, first.mask_prompt, prompt=first.prompt, segmenter=first.preset.segmenter)
        with self._adapters.taught_words(pipe, first):
            kwargs: dict[str, Any] = {
                "num_inference_steps": first.steps,
                family.guidance_argument: first.guidance,
                "generator": generators,
                **family.callback_kwargs(pipe, on_step_end),
                **family.prompt_kwargs(pipe, prompts, negatives, self._prompt_group(first), first.preset),
            }
            painted = mask
            if first.mode == "inpaint" and mask is not None:
                painted = paint_mask(mask, getattr(pipe, "vae_scale_factor", 8))
            inputs = ModeInputs(first.size, len(prompts), first.image, painted, first.strength, first.references,
                                first.reference_role, first.reference_scale)  # fmt: skip
            kwargs.update(family.mode_kwargs(first.mode, inputs))
            kwargs.update(family.reference_kwargs(pipe, first.mode, inputs, first.preset, first.guidance))
            with torch.inference_mode():
                result = pipe(**kwargs)
        images = list(result.images)
        if first.mode == "inpaint":
            assert first.image is not None and mask is not None
            images = keep_outside(images, first.image, mask)
        rendered = time.perf_counter()
        flags = self.aux.safety_flags(plans, images)
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
                scores = self.aux.scores(plan, own)
            except WorkerError as exc:
                outcomes.append(exc)  # only this request needed the scorer
                continue
            tokens = plan.family.text_tokens(pipe, plan.prompt)
            outcomes.append(response_for(plan, own, started, rendered, tokens, scores))
        return outcomes

    def _free_memory(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
