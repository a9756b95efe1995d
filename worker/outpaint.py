"""Zoom out and pan: where the picture goes on the new canvas, and the mask of what is new. Torch-free.

Zoom `z` centres the picture on a canvas `z` times its size; a pan keeps the picture's size and slides
the view by a third of its width or height ("right": the picture moves left, a new third appears on
the right, and the left third falls off). The canvas is a multiple of the family's size multiple and
stays within the preset's pixel cap and the protocol's largest side; when it would not, everything is
scaled down together. The picture is resized only then: otherwise its pixels go onto the canvas as
they are, and the engine keeps them exactly after painting (it composites the original outside the mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageStat

from worker.errors import BadRequest
from worker.protocol import MAX_SIDE, MIN_SIDE, Outpainted, Pan, Size


@dataclass(frozen=True)
class Layout:
    """The canvas, and the picture's place and size on it (x, y may be negative: a pan cuts that much off)."""

    canvas: Size
    x: int
    y: int
    width: int
    height: int

    @property
    def kept(self) -> tuple[int, int, int, int]:
        """The picture's visible part on the canvas as (left, top, right, bottom): the pixels kept."""
        return (
            max(0, self.x),
            max(0, self.y),
            min(self.canvas.width, self.x + self.width),
            min(self.canvas.height, self.y + self.height),
        )

    @property
    def paints_nothing(self) -> bool:
        """Whether the picture covers the whole canvas (nothing new to paint)."""
        return self.kept == (0, 0, self.canvas.width, self.canvas.height)


@dataclass(frozen=True)
class OutpaintInputs:
    """What the inpaint pipeline gets: the canvas with the picture on it, and the mask (white: paint)."""

    image: Image.Image
    mask: Image.Image


def _cap_scale(width: float, height: float, max_pixels: int) -> float:
    """The factor (at most 1) that brings a width x height canvas within the pixel cap and the largest side."""
    return min(1.0, math.sqrt(max_pixels / (width * height)), MAX_SIDE / width, MAX_SIDE / height)


def _side(length: float, multiple: int) -> int:
    """A canvas side: rounded down to the multiple, never below the smallest side a model takes."""
    return max(max(MIN_SIDE, multiple), int(length) // multiple * multiple)


def layout(picture: tuple[int, int], *, zoom: float | None, pan: Pan | None, max_pixels: int, multiple: int) -> Layout:
    """Where a width x height picture goes for a zoom or a pan; a 400 when nothing new would be painted."""
    width, height = picture
    if pan is not None:
        scale = _cap_scale(width, height, max_pixels)
        canvas = Size(width=_side(width * scale, multiple), height=_side(height * scale, multiple))
        # The picture fills the canvas (resized only where the cap or the multiple demanded it).
        dx, dy = canvas.width // 3, canvas.height // 3
        x, y = {"left": (dx, 0), "right": (-dx, 0), "up": (0, dy), "down": (0, -dy)}[pan]
        return Layout(canvas, x, y, canvas.width, canvas.height)
    factor = zoom or 1.0
    scale = _cap_scale(width * factor, height * factor, max_pixels)
    canvas = Size(width=_side(width * factor * scale, multiple), height=_side(height * factor * scale, multiple))
    # The picture keeps its own pixels unless the cap shrank everything (or rounding left it too big).
    shrink = min(scale, canvas.width / width, canvas.height / height)
    placed_w, placed_h = min(canvas.width, round(width * shrink)), min(canvas.height, round(height * shrink))
    where = Layout(canvas, (canvas.width - placed_w) // 2, (canvas.height - placed_h) // 2, placed_w, placed_h)
    if where.paints_nothing:
        raise BadRequest(
            f"zoom {factor:g} adds no new pixels to a {width}x{height} picture at this model's size steps: "
            "zoom out further",
            param="zoom",
        )
    return where


def outpaint_inputs(picture: Image.Image, where: Layout) -> OutpaintInputs:
    """The canvas (the picture on its mean colour) and the mask, white exactly where the picture is not."""
    size = (where.canvas.width, where.canvas.height)
    placed = (
        picture
        if picture.size == (where.width, where.height)
        else picture.resize((where.width, where.height), Image.Resampling.LANCZOS)
    )
    # A flat start for the new area: pipelines painting at strength 1.0 begin there from pure noise anyway,
    # and a lower strength starts from the picture's own average colour rather than black.
    fill = tuple(round(channel) for channel in ImageStat.Stat(placed).mean[:3])
    canvas = Image.new("RGB", size, fill)
    canvas.paste(placed, (where.x, where.y))
    mask = Image.new("L", size, 255)
    mask.paste(0, where.kept)
    return OutpaintInputs(image=canvas, mask=mask)


def described(where: Layout, zoom: float | None, pan: Pan | None) -> Outpainted:
    """The layout as the response reports it."""
    return Outpainted(zoom=zoom, pan=pan, x=where.x, y=where.y, width=where.width, height=where.height)
