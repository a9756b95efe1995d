"""An upscale request checked against the worker's settings: the picture decoded, the result's size decided.

Torch-free, so the HTTP front (and Ray Serve's gateway) can refuse a request before it waits for the render thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from worker.errors import BadRequest
from worker.images import read_image
from worker.protocol import Size, UpscaleRequest
from worker.settings import WorkerSettings


@dataclass(frozen=True)
class UpscalePlan:
    """Everything an upscale needs: the picture, the factor asked for and the result's size."""

    picture: Image.Image = field(compare=False)
    scale: int
    size: Size  # the result's: scale x the picture, or less where the cap applied
    output_format: str = "png"
    compression: int | None = None
    job_id: str = ""


def upscaler_name(settings: WorkerSettings) -> str | None:
    """The configured upscaler's weights file, by name (what responses and /healthz report); None without one."""
    return Path(settings.upscaler).name if settings.upscaler else None


def plan_upscale(settings: WorkerSettings, request: UpscaleRequest, image: bytes, job_id: str = "") -> UpscalePlan:
    """Check an upscale: an upscaler is configured and the picture is readable; the result fits the cap."""
    if settings.upscaler is None:
        raise BadRequest("this worker has no upscaler: its operator sets [worker] upscaler to a weights file")
    picture = read_image(image)  # the worker trusts no client: formats, size and bombs checked before decoding
    width, height = picture.size
    cap = settings.upscale_max_pixels
    factor = min(float(request.scale), math.sqrt(cap / (width * height)))
    if factor <= 1.0:
        raise BadRequest(
            f"the picture is {width}x{height} already; this worker upscales to at most {cap} pixels", param="image"
        )
    size = Size(width=math.floor(width * factor), height=math.floor(height * factor))
    return UpscalePlan(
        picture=picture, scale=request.scale, size=size, output_format=request.output_format,
        compression=request.output_compression, job_id=job_id,
    )  # fmt: skip
