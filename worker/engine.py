"""The render engine: one loaded pipeline per preset, rendering a validated request.

Everything here is blocking (torch); the server calls it from a single worker
thread so that the event loop stays free and the GPU sees one job at a time.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from worker.errors import BadRequest, OutOfMemory
from worker.pipelines import Placement, choose_placement, load_pipeline
from worker.protocol import (
    MAX_SEED,
    GenerationRequest,
    GenerationResponse,
    ImageData,
    Size,
    UsedParameters,
    parse_size,
    size_for_aspect,
)
from worker.settings import ModelPreset, WorkerSettings

log = logging.getLogger(__name__)

Loader = Callable[[ModelPreset, Placement, Path], Any]


def encode_png(image: Image.Image) -> bytes:
    """Re-encode from pixels only, so that no metadata rides along."""
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


@dataclass(frozen=True)
class Resolved:
    """A request's model and size, checked against the presets."""

    name: str
    preset: ModelPreset
    size: Size


class Engine:
    """Holds the loaded pipelines and renders requests."""

    def __init__(self, settings: WorkerSettings, loader: Loader = load_pipeline) -> None:
        self._settings = settings
        self._loader = loader
        self._placement = choose_placement(settings.device, settings.dtype)
        self._pipes: dict[str, Any] = {}

    @property
    def model_names(self) -> list[str]:
        """The presets this engine serves."""
        return sorted(self._settings.models)

    def load(self, name: str | None = None) -> None:
        """Load one preset (the default one unless named)."""
        name = name or self._settings.default_model
        if name not in self._pipes:
            started = time.perf_counter()
            preset = self._settings.models[name]
            cache = Path(self._settings.cache_dir).expanduser()
            self._pipes[name] = self._loader(preset, self._placement, cache)
            log.info("loaded %s in %.1fs on %s", name, time.perf_counter() - started, self._placement)

    def resolve(self, request: GenerationRequest) -> Resolved:
        """Check the request against the presets; raise BadRequest with a clear message."""
        name = request.model or self._settings.default_model
        preset = self._settings.models.get(name)
        if preset is None:
            raise BadRequest(f"unknown model {name!r}; available: {self.model_names}", param="model")
        try:
            if request.size is not None:
                size = parse_size(request.size)
            elif request.aspect is not None:
                size = size_for_aspect(request.aspect, preset.base_size)
            else:
                size = preset.base_size
        except ValueError as exc:
            raise BadRequest(str(exc), param="size") from exc
        if size.width * size.height > preset.max_pixels:
            raise BadRequest(
                f"{size} is larger than model {name!r} allows ({preset.max_pixels} pixels)",
                param="size",
            )
        return Resolved(name=name, preset=preset, size=size)

    def render(self, request: GenerationRequest) -> GenerationResponse:
        """Render a request (blocking). Raises BadRequest or OutOfMemory."""
        started = time.perf_counter()
        resolved = self.resolve(request)
        name, preset, size = resolved.name, resolved.preset, resolved.size
        self.load(name)
        pipe = self._pipes[name]
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        seeds = [(seed + i) % (MAX_SEED + 1) for i in range(request.n)]
        steps = request.steps or preset.steps
        guidance = request.guidance if request.guidance is not None else preset.guidance
        # One generator per image: image i looks the same whether rendered alone
        # (seed + i) or in a batch.
        generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        loaded = time.perf_counter()
        try:
            with torch.inference_mode():
                result = pipe(
                    prompt=request.prompt,
                    negative_prompt=request.negative_prompt,
                    num_images_per_prompt=request.n,
                    width=size.width,
                    height=size.height,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=generators,
                )
        except torch.OutOfMemoryError as exc:
            self._free_memory()
            raise OutOfMemory("out of GPU memory; try a smaller size or fewer images") from exc
        rendered = time.perf_counter()
        data = []
        for image_seed, image in zip(seeds, result.images, strict=True):
            used = UsedParameters(
                model=name,
                width=size.width,
                height=size.height,
                steps=steps,
                guidance=guidance,
                seed=image_seed,
                negative_prompt=request.negative_prompt,
            )
            b64 = base64.b64encode(encode_png(image)).decode("ascii")
            data.append(ImageData(b64_json=b64, revised_prompt=request.prompt, seed=image_seed, parameters=used))
        encoded = time.perf_counter()
        return GenerationResponse(
            created=int(time.time()),
            data=data,
            timings={
                "load_s": loaded - started,
                "render_s": rendered - loaded,
                "encode_s": encoded - rendered,
            },
        )

    def _free_memory(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
