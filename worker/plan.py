"""A request checked against the presets (`Plan`), and the pure rules planning uses. Torch-free."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from worker.errors import BadRequest
from worker.families import Family, family_for
from worker.images import read_image, read_with_alpha
from worker.protocol import AdapterChoice, ConceptChoice, EditRequest, GenerationRequest, Mode, Size, with_style
from worker.settings import ModelPreset


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


def edit_mask(
    request: EditRequest,
    mask: bytes | None,
    alpha: Image.Image | None,
    picture_size: tuple[int, int],
    size: tuple[int, int],
) -> Image.Image | None:
    """An edit's mask at the output size, white where to paint, or None for a whole-picture edit.

    OpenAI's mask paints where its alpha is 0; with no mask, where the image itself is
    transparent. `mask_format="luminance"` (egaku's own client) paints where a greyscale mask is white.
    """
    mask_image = None
    if mask is not None and request.mask_format == "luminance":
        mask_image = read_image(mask, mode="L")
    elif mask is not None:
        mask_image = paint_where_transparent(read_with_alpha(mask)[1], picture_size, "mask")
    elif alpha is not None and alpha.getextrema()[0] == 0:
        mask_image = paint_where_transparent(alpha, picture_size, "image")
    if mask_image is not None and mask_image.size != size:
        # A hard (OpenAI) mask stays hard; a greyscale one is smoothed.
        hard = request.mask_format == "alpha"
        resample = Image.Resampling.NEAREST if hard else Image.Resampling.BILINEAR
        mask_image = mask_image.resize(size, resample)
    return mask_image


def check_concepts(concepts: Sequence[ConceptChoice], name: str, family: Family) -> None:
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
