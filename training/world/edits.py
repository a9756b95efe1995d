"""Edits in the world, as the chat makes them, judged: the changed attribute read right and the rest unchanged.

Each edit is what the agent sends for "make the circle blue": the whole new caption and short words
naming what changes. The worker's engine draws the picture, then edits it the way the image
service asks (a region edit: the parent's seed, strength 0.95, `mask_prompt` = the words, no mask),
so the preset's own masker finds the region. The judge then reads both pictures.
"""

from __future__ import annotations

import base64
import io
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from training.world.evaluate import png
from training.world.judge import edit_change
from training.world.scenes import OBJECT_COLOURS, POSITIONS, SHAPES, SIZES, Scene, Shape, shape_mask
from worker.world.masker import grow
from worker.world.reading import Blob, Reading, read

KINDS = ("recolour", "reshape", "resize", "move", "add", "remove", "background")
REGION_STRENGTH = 0.95  # what the image service sends for a region edit (tools/service.py)


@dataclass(frozen=True)
class WorldEdit:
    """One edit: the scene before and after, the words naming what changes, and which object it is."""

    kind: str
    before: Scene
    after: Scene
    words: str
    old: Shape | None  # the edited object before (None: added, or the background)
    new: Shape | None  # and after (None: removed, or the background)


def _free(scene: Scene, rng: random.Random) -> tuple[tuple[int, int], str]:
    cell = rng.choice([c for c in sorted(POSITIONS) if all(s.cell != c for s in scene.shapes)])
    used = {s.colour for s in scene.shapes} | {scene.background}
    return cell, rng.choice([c for c in OBJECT_COLOURS if c not in used])


def make_edit(kind: str, scene: Scene, rng: random.Random) -> WorldEdit | None:
    """The edit of `kind` on `scene` (None when the scene cannot take it: add needs room, remove a second object)."""
    first = scene.shapes[0]
    words = f"the {first.colour} {first.shape}"
    cell, colour = _free(scene, rng)
    changed: Shape | None = None
    if kind == "recolour":
        changed = replace(first, colour=colour)
    elif kind == "reshape":
        changed = replace(first, shape=SHAPES[(SHAPES.index(first.shape) + 1 + rng.randrange(2)) % len(SHAPES)])
    elif kind == "resize":
        changed = replace(first, size=SIZES[1 - SIZES.index(first.size)])
    elif kind == "move":
        changed = replace(first, cell=cell)
    if changed is not None:
        after = Scene(scene.background, (changed, *scene.shapes[1:]))
        return WorldEdit(kind, scene, after, words, first, changed)
    if kind == "add" and len(scene.shapes) < 3:
        added = Shape(rng.choice(SHAPES), colour, rng.choice(SIZES), cell)
        return WorldEdit(kind, scene, Scene(scene.background, (*scene.shapes, added)), f"a {colour} {added.shape}",
                         None, added)  # fmt: skip
    if kind == "remove" and len(scene.shapes) > 1:
        return WorldEdit(kind, scene, Scene(scene.background, scene.shapes[1:]), words, first, None)
    if kind == "background":
        used = {s.colour for s in scene.shapes} | {scene.background}
        new = rng.choice([c for c in ("white", "gray", "black", *OBJECT_COLOURS) if c not in used])
        return WorldEdit(kind, scene, Scene(new, scene.shapes), "the background", None, None)
    return None


def world_edits(scenes: Sequence[Scene], per_kind: int, seed: int = 0) -> list[WorldEdit]:
    """`per_kind` edits of each kind, taking the scenes in order and skipping those a kind cannot take."""
    rng = random.Random(seed)
    edits: list[WorldEdit] = []
    pool = iter(scenes)
    for _ in range(per_kind):
        for kind in KINDS:
            edit = None
            while edit is None:
                edit = make_edit(kind, next(pool), rng)
            edits.append(edit)
    return edits


def _blob(reading: Reading, shape: Shape) -> Blob | None:
    """The read object standing for an asked-for one: its colour in its cell, else the largest of its colour."""
    same = [b for b in reading.blobs if b.colour == shape.colour]
    here = [b for b in same if b.cell == shape.cell]
    return max(here or same, key=lambda b: b.area) if same else None


def attribute_right(edit: WorldEdit, before: Reading, after: Reading) -> bool:
    """Whether the judge reads the edit's change in the edited picture, and the edited object otherwise as it was.

    "Make the circle blue" is right when a blue object stands in the circle's cell and reads as the
    shape and size the red one read as before; an added object must read as asked in all four.
    """
    if edit.kind == "background":
        return after.background == edit.after.background
    if edit.new is None:  # removed: nothing of its colour is left
        assert edit.old is not None
        return all(b.colour != edit.old.colour for b in after.blobs)
    blob = _blob(after, edit.new)
    if blob is None:
        return False
    wanted = list(edit.new.attributes)
    if edit.old is not None:
        was = _blob(before, edit.old)
        if was is None:
            return False
        # What the edit leaves alone must read as it read before (the parent may have drawn it off).
        for i, (old, new) in enumerate(zip(edit.old.attributes, edit.new.attributes, strict=True)):
            if old == new:
                wanted[i] = before.attributes(was)[i]
    if after.attributes(blob) != tuple(wanted):
        return False
    # A move leaves nothing of its colour behind.
    return edit.kind != "move" or all(b.cell != edit.old.cell for b in after.blobs if b.colour == edit.new.colour)  # type: ignore[union-attr]


def rest_unchanged(edit: WorldEdit, before: Reading, after: Reading) -> bool:
    """Whether every other object reads as it did, and the background too (unless it was the edit)."""
    if edit.kind != "background" and after.background != before.background:
        return False
    for shape in edit.before.shapes:
        if shape == edit.old:
            continue
        was, now = _blob(before, shape), _blob(after, shape)
        if was is not None and (now is None or before.attributes(was) != after.attributes(now)):
            return False
    return True


def inside(edit: WorldEdit, before: Reading, after: Reading) -> np.ndarray:
    """The edited thing's pixels: the object before and after, grown by 2; for a background, all but the objects."""
    if edit.kind == "background":
        objects = np.zeros((64, 64), dtype=bool)
        for each in before.blobs:
            objects |= each.mask
        return ~objects
    region = np.zeros((64, 64), dtype=bool)
    for reading, shape in ((before, edit.old), (after, edit.new)):
        if shape is not None:
            found = _blob(reading, shape)
            # Not drawn (a failed add): where it was asked for.
            region |= grow(found.mask if found is not None else shape_mask(shape), 2)
    return region


@dataclass(frozen=True)
class EditAccuracy:
    """Edits through the worker, judged: per kind and in all."""

    edits: int
    right: float  # the change read right and the rest unchanged
    attribute: float  # the change read right
    rest: float  # the rest unchanged
    inside: float  # mean change inside the edited thing, 0..255
    outside: float  # and outside it
    ratio: float  # outside / inside
    by_kind: dict[str, float]  # share right, per kind


def _picture(response: Any) -> np.ndarray:
    data = base64.b64decode(response.data[0].b64_json)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def edit_accuracy(engine: Any, edits: Sequence[WorldEdit], seed: int = 0) -> EditAccuracy:
    """Draw each edit's scene through the engine, edit it as the chat does, and judge both pictures."""
    from worker.protocol import EditRequest, GenerationRequest

    right: Counter[str] = Counter()
    totals = {"attribute": 0, "rest": 0, "right": 0}
    ins: list[float] = []
    outs: list[float] = []
    for i, edit in enumerate(edits):
        first = _picture(engine.render(engine.plan(GenerationRequest(prompt=edit.before.caption(), seed=seed + i))))
        request = EditRequest(prompt=edit.after.caption(), seed=seed + i, strength=REGION_STRENGTH,
                              mask_prompt=edit.words)  # fmt: skip
        second = _picture(engine.render(engine.plan_edit(request, png(first), None)))
        before, after = read(first), read(second)
        attribute, rest = attribute_right(edit, before, after), rest_unchanged(edit, before, after)
        totals["attribute"] += attribute
        totals["rest"] += rest
        totals["right"] += attribute and rest
        right[edit.kind] += attribute and rest
        change = edit_change(first, second, inside(edit, before, after))
        ins.append(change.inside)
        outs.append(change.outside)
    n = len(edits)
    kinds = Counter(e.kind for e in edits)
    mean_in, mean_out = float(np.mean(ins)), float(np.mean(outs))
    return EditAccuracy(
        edits=n,
        right=round(totals["right"] / n, 4),
        attribute=round(totals["attribute"] / n, 4),
        rest=round(totals["rest"] / n, 4),
        inside=round(mean_in, 2),
        outside=round(mean_out, 2),
        ratio=round(mean_out / mean_in, 4) if mean_in else float("inf"),
        by_kind={k: round(right[k] / kinds[k], 4) for k in KINDS if kinds[k]},
    )
