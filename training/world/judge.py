"""The analytic judge: how well a picture shows the scene its caption asked for.

The picture is read by the worker's own world reading (`worker.world.reading`: colour clustering,
connected components, shape moments), so that the masker that edits a picture and the judge that
scores it read it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.world.scenes import Scene, Shape
from worker.world.reading import Blob, Reading, read

ATTRIBUTES = ("colour", "shape", "size", "position")


@dataclass(frozen=True)
class Verdict:
    """Whether one asked-for object was drawn right, attribute by attribute."""

    colour: bool
    shape: bool
    size: bool
    position: bool


def _match(reading: Reading, wanted: Shape) -> Blob | None:
    """The blob that stands for an asked-for object: the largest of its colour, else the nearest one."""
    same = [b for b in reading.blobs if b.colour == wanted.colour]
    if same:
        return max(same, key=lambda b: b.area)
    if not reading.blobs:
        return None
    cx, cy = wanted.centre
    return min(reading.blobs, key=lambda b: (b.centre[0] - cx) ** 2 + (b.centre[1] - cy) ** 2)


def judge(image: np.ndarray, scene: Scene) -> tuple[bool, list[Verdict]]:
    """Whether the background is right, and a verdict for each object the scene asks for."""
    reading = read(image)
    verdicts = []
    for wanted in scene.shapes:
        blob = _match(reading, wanted)
        if blob is None:
            verdicts.append(Verdict(colour=False, shape=False, size=False, position=False))
            continue
        verdicts.append(
            Verdict(
                colour=blob.colour == wanted.colour,
                shape=blob.shape == wanted.shape,
                size=reading.size_of(blob) == wanted.size,
                position=blob.cell == wanted.cell,
            )
        )
    return reading.background == scene.background, verdicts


@dataclass(frozen=True)
class Fidelity:
    """Shares of asked-for objects drawn right, per attribute (and of backgrounds)."""

    objects: int
    colour: float
    shape: float
    size: float
    position: float
    all_four: float
    background: float


def fidelity(images: list[np.ndarray], scenes: list[Scene]) -> Fidelity:
    """Judge pictures against the scenes they were asked to show."""
    verdicts: list[Verdict] = []
    backgrounds = 0
    for image, scene in zip(images, scenes, strict=True):
        background_ok, found = judge(image, scene)
        backgrounds += background_ok
        verdicts.extend(found)
    n = len(verdicts)

    def share(ok: int) -> float:
        return round(ok / n, 4) if n else 0.0

    return Fidelity(
        objects=n,
        colour=share(sum(v.colour for v in verdicts)),
        shape=share(sum(v.shape for v in verdicts)),
        size=share(sum(v.size for v in verdicts)),
        position=share(sum(v.position for v in verdicts)),
        all_four=share(sum(v.colour and v.shape and v.size and v.position for v in verdicts)),
        background=round(backgrounds / len(scenes), 4) if scenes else 0.0,
    )


@dataclass(frozen=True)
class EditChange:
    """How much an edit changed the pixels inside the edited object, and outside it."""

    inside: float  # mean absolute change per channel, 0..255
    outside: float

    @property
    def ratio(self) -> float:
        """outside / inside: the goal is under 0.2."""
        return self.outside / self.inside if self.inside else float("inf")


def edit_change(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> EditChange:
    """Mean absolute pixel change inside `mask` and outside it."""
    diff = np.abs(before.astype(np.float64) - after.astype(np.float64)).mean(axis=2)
    return EditChange(inside=float(diff[mask].mean()), outside=float(diff[~mask].mean()))
