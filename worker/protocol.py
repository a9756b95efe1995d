"""The worker's wire protocol: request and response types, torch-free.

Longer than most modules on purpose: every type on the wire lives in this one module, which
both deployables import, so that the two sides can never hold different copies of a shape.

Both sides import this module: `tools/` validates a request with these models
before it leaves the bot, and the worker validates it again when it arrives.
The shape is OpenAI's Images API (`POST /v1/images/generations`, every documented
parameter: mapped, ignored or refused, as the README's table says) plus egaku's
extensions (`negative_prompt`, `seed`, `steps`, `guidance`, `aspect`...). Every
response carries back the parameters actually used.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Hard bounds, the same on both sides of the wire. A preset may lower them.
MAX_PROMPT_CHARS = 4000  # OpenAI's limit for dall-e-3
MAX_NEGATIVE_CHARS = 2000
MAX_SIDE = 2048
MIN_SIDE = 32
MAX_PIXELS = 2048 * 2048
MAX_STEPS = 150
MAX_N = 4
MAX_BEST_OF = 8  # best-of-N candidates in one batch; a worker's `max_best_of` may lower it
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
# Teaching a word (textual inversion): a few pictures, a bounded run, a small file.
MIN_TEACH_IMAGES = 3
MAX_TEACH_IMAGES = 10
MAX_TEACH_STEPS = 5000
MAX_CONCEPTS = 4  # taught words one request may use
MAX_EMBEDDING_B64 = 256 * 1024  # a word is one vector per text encoder: a few KB; anything near this is not one
TOKEN_PATTERN = r"^<[a-z0-9][a-z0-9_-]{0,30}>$"  # how a taught word is written in prompts: <our-mascot>
# Pictures one request may carry (OpenAI's most `image[]` in one edit); each model family allows fewer.
MAX_INPUT_IMAGES = 16
# What a request's reference pictures give the new one (IP-Adapter applies it; instruction models read the prompt).
ReferenceRole = Literal["subject", "style"]

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
# OpenAI's documented formats; gif and svg are refused with a clear message (no family makes them).
RequestedFormat = Literal["png", "webp", "jpeg", "gif", "svg"]

# OpenAI's `quality` as a multiple of the preset's steps ("standard" and "hd" are DALL-E's names).
QUALITY_STEPS: dict[str, float] = {
    "low": 0.5,
    "medium": 1.0,
    "standard": 1.0,
    "auto": 1.0,
    "high": 1.5,
    "hd": 1.5,
    "xhigh": 2.0,
    "max": 2.5,
}
Quality = Literal["low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"]
# What a response reports: the tier actually rendered (OpenAI's response literal has no "auto").
QUALITY_TIER: dict[str, str] = {"standard": "medium", "auto": "medium", "hd": "high"}
# How a job renders: text to image, image to image, a masked repaint, or an instruction-edit model.
Mode = Literal["generate", "img2img", "inpaint", "instruct"]
# Outpainting (egaku's extension of /v1/images/edits): the picture on a larger canvas, or one shifted by a
# third of its side. "right" moves the view right: the picture slides left and a new third appears on the right.
Pan = Literal["left", "right", "up", "down"]
MIN_ZOOM = 1.0
MAX_ZOOM = 2.0
# The dedicated upscaler (POST /v1/images/upscales): the factors a request may ask for.
UPSCALE_FACTORS = (2, 4)

# Style presets: words added to the prompt and the negative prompt. Shared with the bot's choices.
STYLES: dict[str, tuple[str, str]] = {
    "photo": ("photograph, natural light, 35mm, sharp focus, high detail", "painting, illustration, cartoon"),
    "anime": ("anime illustration, clean line art, cel shading, vibrant colours", "photo, realistic, 3d render"),
    "watercolor": ("watercolour painting, soft washes, paper texture, delicate edges", "photo, 3d render"),
    "oil": ("oil painting, visible brush strokes, rich impasto, canvas texture", "photo, 3d render"),
    "ukiyoe": ("ukiyo-e woodblock print, flat colours, bold outlines, Edo period", "photo, 3d render"),
    "pixel": ("pixel art, 16-bit, limited palette, crisp pixels", "blurry, photo, smooth gradients"),
    "3d": ("3d render, octane, soft global illumination, studio lighting", "flat, sketch, painting"),
    # OpenAI's DALL-E 3 styles, as presets like the others.
    "vivid": ("vivid saturated colours, dramatic lighting, hyper-detailed, striking composition", "dull, washed out"),
    "natural": ("natural colours, soft realistic lighting, understated, true to life", "oversaturated, hdr, cartoon"),
}
Style = Literal["photo", "anime", "watercolor", "oil", "ukiyoe", "pixel", "3d", "vivid", "natural"]

_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


class Size(BaseModel):
    """An image size in pixels."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def steps_for_quality(steps: int, quality: str | None) -> int:
    """A preset's steps scaled by OpenAI's `quality` (low halves them, high adds half)."""
    scale = QUALITY_STEPS[quality or "auto"]
    return min(MAX_STEPS, max(1, math.ceil(steps * scale)))


def with_style(prompt: str, negative: str | None, style: str | None) -> tuple[str, str | None]:
    """The prompt and negative prompt with a style preset's words added."""
    if style is None:
        return prompt, negative
    extra, avoid = STYLES[style]
    joined = ", ".join(part for part in (prompt, extra) if part)
    return joined, ", ".join(part for part in (negative, avoid) if part)


def image_tokens(width: int, height: int) -> int:
    """What `usage` counts for one image: one token per 16x16-pixel cell (4096 for 1024x1024)."""
    return math.ceil(width / 16) * math.ceil(height / 16)


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


class ConceptChoice(BaseModel):
    """A taught word a request uses: its token as written in the prompt, and its embedding file.

    The bot owns taught words (per server) and sends the file with every request that uses
    one; the worker loads it for that request only and keeps nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(pattern=TOKEN_PATTERN)
    embedding: str = Field(min_length=4, max_length=MAX_EMBEDDING_B64, description="base64 of a safetensors file")


class GenerationRequest(BaseModel):
    """POST /v1/images/generations: OpenAI's fields plus egaku's extensions.

    Every parameter OpenAI documents is accepted; what each one does here (mapped,
    ignored or refused with a 400) is in the README's table.
    """

    model_config = ConfigDict(extra="forbid", strict=False)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(default=None, max_length=128)
    n: int = Field(default=1, ge=1, le=MAX_N)
    size: str | None = Field(default=None, description="WxH or auto; overrides aspect")
    # None: `url` for DALL-E model names (OpenAI's default there), `b64_json` otherwise.
    response_format: Literal["url", "b64_json"] | None = None
    user: str | None = Field(default=None, max_length=128)
    safety_identifier: str | None = Field(default=None, max_length=128)
    quality: Quality | None = None
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: Literal["low", "auto"] | None = None
    output_format: RequestedFormat = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    partial_images: int | None = Field(default=None, ge=0, le=3)
    complexity: Literal["low", "medium", "high"] | None = None  # ignored: no planning stage here
    frame_count: int | None = None  # refused: GIF output only
    frame_duration_ms: int | None = None  # refused: GIF output only
    svg: dict[str, Any] | None = None  # refused: SVG output only
    stream: bool = False
    # egaku extensions
    negative_prompt: str | None = Field(default=None, max_length=MAX_NEGATIVE_CHARS)
    aspect: Aspect | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    guidance: float | None = Field(default=None, ge=0.0, le=MAX_GUIDANCE, allow_inf_nan=False)
    # "egaku": the progress stream egaku's client reads (queue, steps, previews);
    # "openai": OpenAI's partial_image / completed events.
    stream_format: Literal["openai", "egaku"] = "openai"
    job_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    priority: int = Field(default=0, ge=0, le=9)
    adapters: list[AdapterChoice] = Field(default_factory=list, max_length=4)
    concepts: list[ConceptChoice] = Field(default_factory=list, max_length=MAX_CONCEPTS)
    style: Style | None = None
    safety_check: bool = False  # run the worker's safety checker on the outputs
    # Best-of-N: render this many candidates in one batch, score each against the final prompt,
    # and mark the best (`chosen`). Every candidate comes back, in seed order, with its `score`.
    best_of: int = Field(default=1, ge=1, le=MAX_BEST_OF)
    # A new picture drawn from pictures (egaku's extension): base64 images or data: URLs, in order ("picture 1"...).
    # An edit's references are its further `image[]` files instead. What each family does with them: the README.
    references: list[str] = Field(default_factory=list, max_length=MAX_INPUT_IMAGES)
    reference_role: ReferenceRole = "subject"
    # How strongly the references steer the picture where the model has such a control (IP-Adapter's scale);
    # unset: the preset's strength for the role.
    reference_scale: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt is empty")
        return value

    @model_validator(mode="after")
    def _one_pick(self) -> GenerationRequest:
        if self.best_of > 1 and self.n > 1:
            raise ValueError(f"best_of picks one picture: leave n at 1 (got n={self.n}, best_of={self.best_of})")
        return self

    @field_validator("size")
    @classmethod
    def _size_in_bounds(cls, value: str | None) -> str | None:
        if value is not None and value != "auto":
            parse_size(value)
        return value

    @field_validator("output_format")
    @classmethod
    def _format_we_make(cls, value: str) -> str:
        if value in ("gif", "svg"):
            raise ValueError(f"{value} output is not supported here: use png, webp or jpeg")
        return value

    @field_validator("frame_count", "frame_duration_ms")
    @classmethod
    def _no_frames(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError("animated (GIF) output is not supported here")
        return value

    @field_validator("svg")
    @classmethod
    def _no_svg(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            raise ValueError("SVG output is not supported here")
        return value

    @property
    def wants_url(self) -> bool:
        """Whether images go back as short-lived URLs (OpenAI's default for DALL-E models)."""
        if self.response_format is not None:
            return self.response_format == "url"
        return (self.model or "").startswith("dall-e")

    @property
    def requester(self) -> str | None:
        """Who asked, for fairness: OpenAI's safety_identifier wins over the deprecated `user`."""
        return self.safety_identifier or self.user


class EditRequest(GenerationRequest):
    """The form fields of POST /v1/images/edits (the image is a file part; `prompt` is required).

    A mask file follows OpenAI: paint where its alpha is 0. Without a mask, an image
    with transparent pixels is painted there. `mask_format="luminance"` (egaku's own
    client) reads a greyscale mask instead: white is painted. A `mask_prompt`
    ("the squirrel king") makes the mask from words. With none of these, the whole
    image is redrawn with `strength` (img2img).
    """

    strength: float = Field(default=0.6, gt=0.0, le=1.0, allow_inf_nan=False)
    mask_prompt: str | None = Field(default=None, min_length=1, max_length=200)
    mask_format: Literal["alpha", "luminance"] = "alpha"
    # Mapped where the model has a matching control (IP-Adapter: "high" reads the references at full strength);
    # ignored elsewhere, as the README's table says.
    input_fidelity: Literal["high", "low"] | None = None

    # Outpainting: `zoom` (1.0-2.0) puts the picture, centred, on a canvas that many times larger; `pan` shifts
    # the view by a third. The new area is painted from noise (strength 1.0 unless given) and every pixel of
    # the picture is kept; the size comes from the picture and the model's pixel cap.
    zoom: float | None = Field(default=None, ge=MIN_ZOOM, le=MAX_ZOOM, allow_inf_nan=False)
    pan: Pan | None = None

    @model_validator(mode="after")
    def _outpaint_alone(self) -> EditRequest:
        if self.zoom is not None and self.pan is not None:
            raise ValueError("zoom or pan: one at a time")
        if self.outpaints and self.mask_prompt is not None:
            raise ValueError("zoom and pan paint the new area themselves: leave out mask_prompt")
        if self.outpaints and ((self.size not in (None, "auto")) or self.aspect is not None):
            raise ValueError("zoom and pan decide the size from the picture: leave out size and aspect")
        return self

    @property
    def outpaints(self) -> bool:
        """Whether this edit extends the picture past its edges (zoom or pan)."""
        return self.zoom is not None or self.pan is not None

    @field_validator("references")
    @classmethod
    def _references_are_files(cls, value: list[str]) -> list[str]:
        if value:
            raise ValueError("an edit's reference pictures are further image[] files, after the one edited")
        return value


class VariationRequest(EditRequest):
    """The form fields of POST /v1/images/variations: OpenAI sends no prompt (egaku may)."""

    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        return value


class Outpainted(BaseModel):
    """Where the picture sits in an outpainted result, in the result's pixels (a pan's may start off the canvas)."""

    model_config = ConfigDict(frozen=True)

    zoom: float | None = None
    pan: Pan | None = None
    x: int  # the picture's left edge on the canvas (negative: a pan cut off that much)
    y: int
    width: int  # the picture's size on the canvas (smaller than sent when the canvas met the pixel cap)
    height: int


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
    mode: Mode = "generate"
    adapters: list[AdapterChoice] = Field(default_factory=list)
    concepts: list[str] = Field(default_factory=list)  # the taught words loaded for this image
    style: str | None = None
    safety_checked: bool = False
    outpaint: Outpainted | None = None  # zoom and pan: where the original picture went
    references: int = 0  # reference pictures read beside the prompt (an edited picture is not counted)
    reference_role: ReferenceRole | None = None
    reference_scale: float | None = None  # None: the model has no strength control; the prompt says how to use them


class ImageData(BaseModel):
    """One image in a response (OpenAI's shape, plus the parameters used)."""

    b64_json: str | None = None
    url: str | None = None  # instead of b64_json for response_format="url"
    revised_prompt: str | None = None
    seed: int
    parameters: UsedParameters
    score: float | None = None  # best-of-N: how well the image matches the prompt (higher is better)


class TokenDetails(BaseModel):
    """Tokens by kind."""

    image_tokens: int = 0
    text_tokens: int = 0


class Usage(BaseModel):
    """OpenAI's `usage`: prompt tokens (the text encoder's), image tokens (one per 16x16 cell)."""

    input_tokens: int
    input_tokens_details: TokenDetails
    output_tokens: int
    output_tokens_details: TokenDetails
    total_tokens: int

    @classmethod
    def of(cls, text_tokens: int, input_image_tokens: int, output_image_tokens: int) -> Usage:
        """A usage record from its three counts."""
        given = text_tokens + input_image_tokens
        return cls(
            input_tokens=given,
            input_tokens_details=TokenDetails(image_tokens=input_image_tokens, text_tokens=text_tokens),
            output_tokens=output_image_tokens,
            output_tokens_details=TokenDetails(image_tokens=output_image_tokens),
            total_tokens=given + output_image_tokens,
        )


class GenerationResponse(BaseModel):
    """The response to POST /v1/images/generations, /edits and /variations."""

    created: int
    data: list[ImageData]
    output_format: OutputFormat = "png"
    background: Literal["opaque"] = "opaque"
    quality: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    size: str | None = None
    usage: Usage | None = None
    safety_identifier: str | None = None
    job_id: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    chosen: int | None = None  # best-of-N: the index in `data` of the best-scoring candidate


class DescriptionResponse(BaseModel):
    """The response to POST /v1/images/descriptions: an English prompt for an uploaded image."""

    prompt: str
    model: str
    timings: dict[str, float] = Field(default_factory=dict)


class UpscaleRequest(BaseModel):
    """The form fields of POST /v1/images/upscales (the picture is the `image` file part).

    The worker's super-resolution network (`[worker] upscaler`) enlarges the picture 2x or 4x, faithfully:
    nothing is redrawn. The result is capped at the worker's `upscale_max_pixels`.
    """

    model_config = ConfigDict(extra="forbid")

    scale: int = 2
    output_format: OutputFormat = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    job_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")

    @field_validator("scale")
    @classmethod
    def _known_factor(cls, value: int) -> int:
        if value not in UPSCALE_FACTORS:
            raise ValueError(f"scale is {value}; the upscaler enlarges {' or '.join(map(str, UPSCALE_FACTORS))} times")
        return value


class UpscaledImage(BaseModel):
    """One upscaled picture."""

    b64_json: str


class UpscaleResponse(BaseModel):
    """The response to POST /v1/images/upscales."""

    created: int
    data: list[UpscaledImage]
    output_format: OutputFormat = "png"
    size: str  # the result's WxH (smaller than scale x the picture when the cap applied)
    scale: int  # the factor asked for
    model: str  # the upscaler's weights file, by name
    job_id: str | None = None
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
    loss: float | None = None  # training steps only


class TeachRequest(BaseModel):
    """The form fields of POST /v1/concepts/train (the pictures are `image[]` file parts, 3 to 10).

    A textual-inversion run: one new word (`token`), started from `init_word`'s embedding,
    trained for `steps` (the worker's default and cap apply) on the preset's frozen model.
    """

    model_config = ConfigDict(extra="forbid")

    token: str = Field(pattern=TOKEN_PATTERN)
    init_word: str = Field(default="object", min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z -]*$")
    model: str | None = Field(default=None, max_length=128)
    steps: int | None = Field(default=None, ge=1, le=MAX_TEACH_STEPS)
    learning_rate: float | None = Field(default=None, gt=0.0, le=0.1, allow_inf_nan=False)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    user: str | None = Field(default=None, max_length=128)
    job_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    stream: bool = False


class TeachSettingsUsed(BaseModel):
    """How a word was trained, returned with it (the bot stores it with the word)."""

    model: str
    family: str
    init_word: str
    steps: int  # steps run (fewer than asked when the time bound stopped it)
    steps_asked: int
    learning_rate: float
    seed: int
    width: int
    height: int
    images: int
    stopped_by: Literal["steps", "time"] = "steps"


class TeachResponse(BaseModel):
    """The response to POST /v1/concepts/train: the learned word, as a safetensors file in base64."""

    token: str
    embedding: str  # base64 of the safetensors file the family's load_textual_inversion reads
    loss: float | None = None  # the mean loss of the last steps
    settings: TeachSettingsUsed
    job_id: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)


class OpenAIStreamEvent(BaseModel):
    """One event of OpenAI's image stream (`stream: true` without `stream_format: "egaku"`)."""

    type: Literal[
        "image_generation.partial_image",
        "image_generation.completed",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    b64_json: str
    background: Literal["transparent", "opaque", "auto"]
    created_at: int
    output_format: OutputFormat
    quality: Literal["low", "medium", "high", "xhigh", "max", "auto"]
    size: str
    partial_image_index: int | None = None  # partial images only
    usage: Usage | None = None  # completed only
    safety_identifier: str | None = None


class HealthResponse(BaseModel):
    """GET /healthz."""

    status: Literal["ok", "loading"]
    models: list[str]
    # The presets in memory now; None where the answering process cannot know (Ray Serve's gateway: the
    # replicas hold them) or an older worker answered.
    loaded: list[str] | None = None
    upscaler: str | None = None  # the upscaler's weights file, by name, when one is configured
