"""A request checked against the presets (`Plan`), and the pure rules planning uses. Torch-free."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from worker.errors import BadRequest
from worker.families import Family, family_for
from worker.images import read_image, read_with_alpha
from worker.outpaint import described, layout, outpaint_inputs
from worker.protocol import (
    AdapterChoice,
    ConceptChoice,
    EditRequest,
    GenerationRequest,
    Mode,
    Outpainted,
    ReferenceRole,
    Size,
    parse_size,
    size_for_aspect,
    with_style,
)
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
    best_of: int = 1  # > 1: the seeds are candidates, scored against the prompt; the best is marked
    outpaint: Outpainted | None = None  # zoom and pan: where the picture sits on the canvas
    # Pictures the model reads beside the prompt, in the request's order (after the edited one, if any).
    references: tuple[Image.Image, ...] = field(default=(), compare=False)
    reference_role: ReferenceRole | None = None
    reference_scale: float | None = None  # None: the model has no such control (the prompt says how)

    @property
    def input_images(self) -> int:
        """The pictures the request gave: the edited one, if any, and the references."""
        return (self.image is not None) + len(self.references)

    @property
    def family(self) -> Family:
        """The model family that renders this plan."""
        return family_for(self.preset.family)

    @property
    def key(self) -> Hashable:
        """Plans with equal keys can share one batch."""
        if self.mode != "generate" or self.references:
            return ("edit", self.job_id)
        return (self.model, self.size, self.steps, self.guidance, self.negative is None, self.adapters, self.concepts)


def prompts_for(request: GenerationRequest, family: Family) -> tuple[str, str | None]:
    """The request's prompt and negative prompt with its style; no negative for a model that ignores it."""
    prompt, negative = with_style(request.prompt, request.negative_prompt, request.style)
    return prompt, negative if family.negative_prompts else None


def size_for(request: GenerationRequest, preset: ModelPreset, name: str, default: Size) -> Size:
    """The size a request renders at: its `size`, else its `aspect`, else `default`; within the preset's cap and
    size step (an explicit size off the step is a 400; one made here is rounded down to it)."""
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


def outpainted(
    base: Plan, request: EditRequest, picture: Image.Image, alpha: Image.Image | None, mask_sent: bool
) -> Plan:
    """A zoom or pan as an inpaint plan: the picture on its new canvas, the mask white on the new area only."""
    family = base.family
    if "inpaint" not in family.modes:
        raise BadRequest(
            f"model {base.model!r} ({family.name}) cannot zoom or pan: it has no inpaint pipeline", param="model"
        )
    if mask_sent or (alpha is not None and alpha.getextrema()[0] == 0):
        raise BadRequest("zoom and pan paint the new area themselves: send an opaque picture and no mask", param="mask")
    where = layout(
        picture.size, zoom=request.zoom, pan=request.pan, max_pixels=base.preset.max_pixels,
        multiple=family.size_multiple,
    )  # fmt: skip
    inputs = outpaint_inputs(picture, where)
    # The new area is painted from noise unless the request asked for a strength of its own.
    strength = request.strength if "strength" in request.model_fields_set else 1.0
    prompt, negative = prompts_for(request, family)
    return replace(
        base,
        size=where.canvas,
        steps=max(base.steps, math.ceil(1 / strength)),
        prompt=prompt,
        negative=negative,
        mode="inpaint",
        strength=strength,
        image=inputs.image,
        mask=inputs.mask,
        outpaint=described(where, request.zoom, request.pan),
    )


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


def check_image_count(family: Family, preset: ModelPreset, name: str, mode: Mode, count: int, editing: bool) -> None:
    """A 400 naming the limit when a request gives the model more pictures than it reads in `mode`."""
    limit = family.image_limit(preset, mode, editing)
    if count <= limit:
        return
    pictures = "picture" if limit == 1 else "pictures"
    if editing:
        message = f"model {name!r} ({family.name}) reads at most {limit} {pictures} in one edit, the edited one first"
        raise BadRequest(f"{message}; got {count}", param="image")
    if limit == 0:
        raise BadRequest(f"model {name!r} ({family.name}) draws nothing from reference pictures", param="references")
    message = f"model {name!r} ({family.name}) reads at most {limit} reference {pictures}; got {count}"
    raise BadRequest(message, param="references")


def decode_reference(text: str, index: int) -> bytes:
    """A generation's reference picture from base64 or a data: URL (the worker decodes the image itself later)."""
    data = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise BadRequest(f"picture {index + 1} is not base64 (or a data: URL)", param="references") from exc


def drawn_from(request: GenerationRequest, preset: ModelPreset, name: str, family: Family) -> tuple[Image.Image, ...]:
    """A new picture's reference pictures (egaku's `references`), counted before any is decoded."""
    if not request.references:
        return ()
    check_image_count(family, preset, name, family.reference_mode, len(request.references), editing=False)
    files = [decode_reference(text, i) for i, text in enumerate(request.references)]
    return read_references(files, preset, family, first=1, param="references")


def read_references(
    files: Sequence[bytes], preset: ModelPreset, family: Family, first: int = 2, param: str = "image"
) -> tuple[Image.Image, ...]:
    """Reference pictures decoded safely (numbered from `first` in a 400), each scaled down to the preset's pixel
    budget, never up."""
    pictures = []
    for number, data in enumerate(files, start=first):
        try:
            picture = read_image(data)
        except BadRequest as exc:
            raise BadRequest(f"picture {number}: {exc.message}", param=param) from exc
        size = fit_size(picture.size, preset.max_pixels, family.size_multiple)
        if picture.width * picture.height > preset.max_pixels:
            picture = picture.resize((size.width, size.height), Image.Resampling.LANCZOS)
        pictures.append(picture)
    return tuple(pictures)


def reference_fields(
    request: GenerationRequest, preset: ModelPreset, family: Family, references: tuple[Image.Image, ...]
) -> dict[str, Any]:
    """A plan's references with their role and strength (the family's control; None where it has none)."""
    if not references:
        return {}
    fidelity = request.input_fidelity if isinstance(request, EditRequest) else None
    scale = family.reference_scale(preset, request.reference_role, fidelity, request.reference_scale)
    return {"references": references, "reference_role": request.reference_role, "reference_scale": scale}
