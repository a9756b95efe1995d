"""The shape world's edit masks: which pixels an edit repaints, read from the picture and its new caption.

CLIPSeg cannot load offline, and the world needs no model to find its objects: the picture is read
into objects (`worker.world.reading`, the judge's own reading), the new caption is parsed
(`worker.world.caption`), and the objects that differ are masked. A recoloured, reshaped, resized or
moved object is masked where it was and where it will be, an added one where it will be, a removed
one where it was; a new background masks everything but the objects. The target words ("the red
circle") keep the mask to what the user named when the caption differs in more (a misread
object, or an LLM's slip), and stand alone when the caption is not the world's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from worker.errors import BadRequest
from worker.world.caption import CaptionError, Target, parse_caption, parse_target
from worker.world.reading import Blob, Reading, read
from worker.world.scene import GRID, SIZE, Scene, Shape, shape_mask

log = logging.getLogger(__name__)

GROW = 2  # pixels around a read object: the model's soft edge belongs to it
ROOM = 3  # pixels around a new object's place: where it is drawn wanders by the world's jitter (2 pixels)


@dataclass(frozen=True)
class Change:
    """One object the edit changes: as read in the picture (None: it is added) and as asked (None: removed)."""

    before: Blob | None
    after: Shape | None


@dataclass(frozen=True)
class EditRegion:
    """What an edit changes in a picture, and the pixels it may repaint, (SIZE, SIZE) booleans."""

    changes: tuple[Change, ...]
    background: bool
    mask: np.ndarray


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask grown by `pixels` steps to its four neighbours."""
    out = mask.copy()
    for _ in range(pixels):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _picks_blob(target: Target, reading: Reading, blob: Blob) -> bool:
    """Whether the words name this read object; its read shape counts only when nothing else places it."""
    colour, shape, size, cell = reading.attributes(blob)
    if target.shape is not None and (target.colour == colour or target.cell == cell):
        shape = target.shape  # shapes are the reading's weakest attribute; colour or place decide
    return target.picks(colour, shape, size, cell)


def _refers(target: Target, reading: Reading, change: Change) -> bool:
    before = change.before is not None and _picks_blob(target, reading, change.before)
    return before or (change.after is not None and target.picks(*change.after.attributes))


def _pair(reading: Reading, wanted: Scene, target: Target) -> tuple[list[Change], list[Change]]:
    """The changes, and the same-colour same-place pairs the words do not name (perhaps only misread)."""
    blobs, shapes = list(reading.blobs), list(wanted.shapes)
    for shape in list(shapes):  # 1. exactly as asked: kept
        same = [b for b in blobs if reading.attributes(b) == shape.attributes]
        if same:
            blobs.remove(same[0])
            shapes.remove(shape)
    near: list[Change] = []
    for shape in list(shapes):  # 2. same colour in the same place: reshaped or resized, or misread
        same = [b for b in blobs if (b.colour, b.cell) == (shape.colour, shape.cell)]
        if same:
            near.append(Change(before=same[0], after=shape))
            blobs.remove(same[0])
            shapes.remove(shape)
    changes: list[Change] = []
    while blobs and shapes:  # 3. the most attributes in common: recoloured or moved
        shared, blob, shape = max(
            ((sum(a == b for a, b in zip(reading.attributes(bl), sh.attributes, strict=True)), bl, sh)
             for bl in blobs for sh in shapes),
            key=lambda found: found[0],
        )  # fmt: skip
        if shared < 2:
            break
        changes.append(Change(before=blob, after=shape))
        blobs.remove(blob)
        shapes.remove(shape)
    changes += [Change(before=b, after=None) for b in blobs] + [Change(before=None, after=s) for s in shapes]
    # A near pair is a change when the words name it; otherwise the reading is trusted less than the caption.
    unnamed: list[Change] = []
    for change in near:
        named = target.names_an_object and _refers(target, reading, change)
        (changes if named else unnamed).append(change)
    return changes, unnamed


def _place(change: Change) -> np.ndarray:
    """Where the changed object may be drawn: its new shape at its old centre if it stays in its cell."""
    assert change.after is not None
    shape = change.after
    if change.before is not None and change.before.cell == shape.cell:
        step = SIZE / GRID
        x, y = change.before.centre
        jitter = (round(x - (shape.cell[1] + 0.5) * step), round(y - (shape.cell[0] + 0.5) * step))
        shape = Shape(shape=shape.shape, colour=shape.colour, size=shape.size, cell=shape.cell, jitter=jitter)
    return grow(shape_mask(shape), ROOM)


def _mask(changes: list[Change], background: bool, kept: list[Blob]) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for change in changes:
        if change.before is not None:
            mask |= grow(change.before.mask, GROW)
        if change.after is not None:
            mask |= _place(change)
    if background:
        objects = np.zeros_like(mask)
        for blob in kept:
            objects |= blob.mask
        mask |= ~objects
    return mask


def edit_region(picture: np.ndarray, caption: str, words: str) -> EditRegion:
    """What an edit to `caption` changes in `picture` (SIZE x SIZE RGB), narrowed to what `words` name."""
    reading = read(picture)
    target = parse_target(words)
    try:
        wanted: Scene | None = parse_caption(caption)
    except CaptionError:
        wanted = None
    changes: list[Change] = []
    background = target.background
    if wanted is not None:
        changes, near = _pair(reading, wanted, target)
        if target.names_an_object:
            changes = [c for c in changes if _refers(target, reading, c)] or changes
        background = background or wanted.background != reading.background
        if not changes and not background:
            changes = near  # nothing else differs: the reshape or resize was meant after all
    if not changes and not background and target.names_an_object:
        # Not the world's sentence, or one that changes nothing: the words alone say what to repaint.
        changes = [Change(before=b, after=None) for b in reading.blobs if _picks_blob(target, reading, b)]
    kept = [b for b in reading.blobs if all(c.before is not b for c in changes)]
    return EditRegion(tuple(changes), background, _mask(changes, background, kept))


class WorldMasker:
    """The `world` segmenter: masks for edits of shape-world pictures, with no model to load."""

    def mask(self, image: Image.Image, words: str, *, prompt: str) -> Image.Image:
        """A white-on-black "L" mask of what the edit to `prompt` changes, narrowed to `words`, at the image's size."""
        small = image.convert("RGB")
        if small.size != (SIZE, SIZE):
            small = small.resize((SIZE, SIZE), Image.Resampling.BOX)  # area average: exact for whole multiples
        region = edit_region(np.asarray(small), prompt, words)
        if not region.mask.any():
            raise BadRequest(f"couldn't find {words!r} in the picture, or anything the new caption changes",
                             param="mask_prompt")  # fmt: skip
        log.info("world mask for %r: %d change(s), background %s, %.0f%% of the picture",
                 words, len(region.changes), region.background, 100 * region.mask.mean())  # fmt: skip
        mask = Image.fromarray(region.mask.astype(np.uint8) * 255)
        return mask if mask.size == image.size else mask.resize(image.size, Image.Resampling.NEAREST)
