"""The models beside the pipelines, each loaded on first use: masker, captioner, scorer, safety checker, upscaler.

All of them run on the render thread, between batches, like the pipelines.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from worker.errors import BadRequest, WorkerError
from worker.images import encode_image
from worker.pipelines import Placement
from worker.plan import Plan
from worker.protocol import DescriptionResponse, UpscaledImage, UpscaleResponse
from worker.settings import WorkerSettings
from worker.upscale.plan import UpscalePlan

log = logging.getLogger(__name__)

WORLD_SEGMENTER = "world"  # a preset's `segmenter` naming the shape world's own masker


class AuxiliaryModels:
    """Loads each helper model once, on first use, and answers with it."""

    def __init__(self, settings: WorkerSettings, placement: Placement, cache_dir: Path) -> None:
        self._settings = settings
        self._placement = placement
        self._cache_dir = cache_dir
        self._maskers: dict[str, Any] = {}
        self._checker: Any = None
        self._captioner: Any = None
        self._scorer: Any = None
        self._upscaler: Any = None

    def mask(self, image: Image.Image, words: str, *, prompt: str, segmenter: str | None = None) -> Image.Image:
        """An inpainting mask of where `words` are in `image`, for an edit to `prompt`.

        `segmenter` is the preset's own (unset: the worker's): "world" reads shape-world pictures
        and captions; anything else is a CLIPSeg model, which reads only the words.
        """
        source = segmenter or self._settings.segmenter
        if source == WORLD_SEGMENTER:
            from worker.world.masker import WorldMasker

            world: WorldMasker = self._maskers.setdefault(source, WorldMasker())
            return world.mask(image, words, prompt=prompt)
        if source not in self._maskers:
            from worker.masks import TextMasker

            self._maskers[source] = TextMasker(source, self._placement, self._cache_dir)
        mask: Image.Image = self._maskers[source].mask(image, words)
        return mask

    def describe(self, picture: Image.Image) -> DescriptionResponse:
        """An English prompt for a picture (/describe)."""
        started = time.perf_counter()
        if self._captioner is None:
            from worker.captions import Captioner

            try:
                self._captioner = Captioner(self._settings.captioner, self._placement, self._cache_dir)
            except (OSError, ValueError) as exc:  # not on disk, no hub, or a bad id: name the setting to fix
                log.error("could not load the captioner %r", self._settings.captioner, exc_info=exc)
                raise WorkerError(f"the captioner {self._settings.captioner!r} could not be loaded") from exc
        prompt = self._captioner.describe(picture)
        if not prompt:
            raise BadRequest("couldn't find words for that image", param="image")
        timing = {"describe_s": round(time.perf_counter() - started, 4)}
        return DescriptionResponse(prompt=prompt, model=self._settings.captioner, timings=timing)

    def scores(self, plan: Plan, images: list[Image.Image]) -> list[float] | None:
        """Best-of-N: each candidate's score against the final prompt; None for an ordinary request."""
        if plan.best_of < 2:
            return None
        if self._scorer is None:
            from worker.scoring import Scorer

            s = self._settings
            try:
                self._scorer = Scorer(s.scorer, s.scorer_processor, self._placement, self._cache_dir)
            except (OSError, ValueError) as exc:  # not on disk, no hub, or not a CLIP model: name the setting
                log.error("could not load the scorer %r", s.scorer, exc_info=exc)
                raise WorkerError(f"the best-of scorer {s.scorer!r} could not be loaded") from exc
        scores: list[float] = self._scorer.scores(images, plan.prompt)
        return scores

    def safety_flags(self, plans: list[Plan], images: list[Image.Image]) -> list[bool]:
        """Per image: flagged by the checker (only for plans that asked for the check)."""
        wanted = [plan.safety_check for plan in plans for _ in plan.seeds]
        if not any(wanted):
            return [False] * len(images)
        if self._checker is None:
            from worker.safety import SafetyChecker

            self._checker = SafetyChecker(self._settings.safety_checker or "", self._placement, self._cache_dir)
        verdicts = self._checker.flagged(images)
        return [want and verdict for want, verdict in zip(wanted, verdicts, strict=True)]

    def upscale(self, plan: UpscalePlan, stop: threading.Event | None = None) -> UpscaleResponse:
        """The picture enlarged by the super-resolution network ([worker] upscaler), encoded as asked."""
        started = time.perf_counter()
        s = self._settings
        if self._upscaler is None:
            from worker.upscale.network import Upscaler

            assert s.upscaler is not None  # plan_upscale refuses a worker without one
            self._upscaler = Upscaler(
                s.upscaler, self._placement, allow_pickle=s.upscaler_allow_pickle, tile=s.upscale_tile,
                overlap=s.upscale_overlap,
            )  # fmt: skip
        loaded = time.perf_counter()
        picture = self._upscaler.upscale(plan.picture, plan.size, stop)
        upscaled = time.perf_counter()
        encoded = encode_image(picture, plan.output_format, plan.compression or 90)
        return UpscaleResponse(
            created=int(time.time()),
            data=[UpscaledImage(b64_json=base64.b64encode(encoded).decode("ascii"))],
            output_format=plan.output_format,  # type: ignore[arg-type]
            size=f"{picture.width}x{picture.height}",
            scale=plan.scale,
            model=self._upscaler.name,
            job_id=plan.job_id or None,
            timings={
                "load_s": round(loaded - started, 4),
                "upscale_s": round(upscaled - loaded, 4),
                "encode_s": round(time.perf_counter() - upscaled, 4),
            },
        )
