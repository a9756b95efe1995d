"""The worker's wire protocol: request and response types, torch-free.

Both sides import this module: `tools/` validates a request with these models
before it leaves the bot, and the worker validates it again when it arrives.
The shape is OpenAI's Images API (`POST /v1/images/generations`, `b64_json`)
plus egaku's extensions (`negative_prompt`, `seed`, `steps`, `guidance`,
`aspect`). Every response carries back the parameters actually used.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Hard bounds, the same on both sides of the wire. A preset may lower them.
MAX_PROMPT_CHARS = 4000  # OpenAI's limit for dall-e-3
MAX_NEGATIVE_CHARS = 2000
MAX_SIDE = 2048
MIN_SIDE = 32
MAX_PIXELS = 2048 * 2048
MAX_STEPS = 150
MAX_N = 4
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1

Aspect = Literal["1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4"]
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "4:3": (4, 3),
    "3:4": (3, 4),
}

OutputFormat = Literal["png", "webp", "jpeg"]

# Style presets: words added to the prompt and the negative prompt. Shared with the bot's choices.
STYLES: dict[str, tuple[str, str]] = {
    "photo": ("photograph, natural light, 35mm, sharp focus, high detail", "painting, illustration, cartoon"),
    "anime": ("anime illustration, clean line art, cel shading, vibrant colours", "photo, realistic, 3d render"),
    "watercolor": ("watercolour painting, soft washes, paper texture, delicate edges", "photo, 3d render"),
    "oil": ("oil painting, visible brush strokes, rich impasto, canvas texture", "photo, 3d render"),
    "ukiyoe": ("ukiyo-e woodblock print, flat colours, bold outlines, Edo period", "photo, 3d render"),
    "pixel": ("pixel art, 16-bit, limited palette, crisp pixels", "blurry, photo, smooth gradients"),
    "3d": ("3d render, octane, soft global illumination, studio lighting", "flat, sketch, painting"),
}
Style = Literal["photo", "anime", "watercolor", "oil", "ukiyoe", "pixel", "3d"]

_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


class Size(BaseModel):
    """An image size in pixels."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def parse_size(text: str) -> Size:
    """Parse and bound-check a "WxH" size string."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"size must look like 1024x1024, got {text!r}")
    size = Size(width=int(match.group(1)), height=int(match.group(2)))
    check_size(size)
    return size


def check_size(size: Size) -> None:
    """Raise ValueError unless size is within the protocol's bounds."""
    for side in (size.width, size.height):
        if side % 8:
            raise ValueError(f"width and height must be multiples of 8, got {size}")
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ValueError(f"width and height must be {MIN_SIDE}..{MAX_SIDE}, got {size}")
    if size.width * size.height > MAX_PIXELS:
        raise ValueError(f"{size} is more than {MAX_PIXELS} pixels")


def size_for_aspect(aspect: str, base: Size) -> Size:
    """The largest size with the given aspect that fits base's pixel budget, in whole units.

    Units are 64 px for real models (SDXL's buckets: 1216x832, 1344x768, 1152x896)
    and 8 px for tiny test models.
    """
    wr, hr = ASPECT_RATIOS[aspect]
    budget = base.width * base.height
    unit = 64 if min(base.width, base.height) >= 256 else 8
    short_r, long_r = min(wr, hr), max(wr, hr)
    best = (unit, unit)
    for short in range(unit, MAX_SIDE + 1, unit):
        long = (short * long_r // short_r) // unit * unit
        if short >= MIN_SIDE and long <= MAX_SIDE and best[0] * best[1] < short * long <= budget:
            best = (short, long)
    size = Size(width=best[1], height=best[0]) if wr >= hr else Size(width=best[0], height=best[1])
    check_size(size)
    return size


class AdapterChoice(BaseModel):
    """A LoRA or textual inversion configured on the worker, by name, with a strength."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    scale: float = Field(default=1.0, ge=0.0, le=2.0, allow_inf_nan=False)


class GenerationRequest(BaseModel):
    """POST /v1/images/generations: OpenAI's fields plus egaku's extensions."""

    model_config = ConfigDict(extra="forbid", strict=False)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(default=None, max_length=128)
    n: int = Field(default=1, ge=1, le=MAX_N)
    size: str | None = Field(default=None, description="WxH; overrides aspect")
    response_format: Literal["b64_json"] = "b64_json"
    user: str | None = Field(default=None, max_length=128)
    # egaku extensions
    negative_prompt: str | None = Field(default=None, max_length=MAX_NEGATIVE_CHARS)
    aspect: Aspect | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    guidance: float | None = Field(default=None, ge=0.0, le=MAX_GUIDANCE, allow_inf_nan=False)
    output_format: OutputFormat = "png"
    stream: bool = False
    job_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    priority: int = Field(default=0, ge=0, le=9)
    adapters: list[AdapterChoice] = Field(default_factory=list, max_length=4)
    style: Style | None = None
    safety_check: bool = False  # run the worker's safety checker on the outputs

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt is empty")
        return value

    @field_validator("size")
    @classmethod
    def _size_in_bounds(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value


class EditRequest(GenerationRequest):
    """The form fields of POST /v1/images/edits and /v1/images/variations (the image is a file part).

    With a mask file or a `mask_prompt` ("the squirrel king"), the masked region is
    repainted (inpaint); without, the whole image is redrawn with `strength` (img2img).
    """

    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    strength: float = Field(default=0.6, gt=0.0, le=1.0, allow_inf_nan=False)
    mask_prompt: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        return value


class UsedParameters(BaseModel):
    """What the worker actually rendered with, returned with every image."""

    model: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    negative_prompt: str | None = None
    strength: float | None = None
    mode: Literal["generate", "img2img", "inpaint", "instruct"] = "generate"
    adapters: list[AdapterChoice] = Field(default_factory=list)
    style: str | None = None
    safety_checked: bool = False


class ImageData(BaseModel):
    """One image in a response (OpenAI's shape, plus the parameters used)."""

    b64_json: str
    revised_prompt: str | None = None
    seed: int
    parameters: UsedParameters


class GenerationResponse(BaseModel):
    """The response to POST /v1/images/generations, /edits and /variations."""

    created: int
    data: list[ImageData]
    output_format: OutputFormat = "png"
    job_id: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)


class DescriptionResponse(BaseModel):
    """The response to POST /v1/images/descriptions: an English prompt for an uploaded image."""

    prompt: str
    model: str
    timings: dict[str, float] = Field(default_factory=dict)


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    """The body of every non-2xx answer."""

    error: ErrorDetail


class ProgressEvent(BaseModel):
    """One Server-Sent Event of a streamed job, before its `completed` or `error` event."""

    kind: Literal["queued", "started", "step", "preview"]
    job_id: str | None = None
    position: int | None = None
    batch_size: int | None = None
    step: int | None = None
    steps: int | None = None
    eta_s: float | None = None
    b64_png: str | None = None


class HealthResponse(BaseModel):
    """GET /healthz."""

    status: Literal["ok", "loading"]
    models: list[str]
