"""The analytic judge: read a picture of the shape world back into objects, without a model.

Colour clustering (each pixel to its nearest palette colour), connected components, then shape
moments: how much of its bounding box a blob fills (square 1, circle pi/4, triangle 1/2) and how
low its centroid sits in that box (an upright triangle's sits at 2/3 of its height) give the shape,
its extent the size, its centroid the grid cell. The thresholds sit between the values of exact
shapes and those of the same shapes after a VAE's blur (large shapes stay apart; small ones blur
towards discs, which is what the model then drew).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from training.world.scenes import GRID, PALETTE, SIZE, Scene, Shape

_NAMES = tuple(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float64)
MIN_AREA = 16  # smaller specks are noise, not objects (a small triangle covers about 60 pixels)
LARGE_EXTENT = 15  # a blob at least this wide or tall is "large" (small shapes are 11, large 19)
ATTRIBUTES = ("colour", "shape", "size", "position")


@dataclass(frozen=True)
class Blob:
    """One object found in a picture."""

    colour: str
    area: int
    centre: tuple[float, float]  # x, y in pixels
    fill: float  # area / bounding-box area
    drop: float  # the centroid's height in the bounding box, from its top: 0.5 symmetric, 0.67 triangle

    @property
    def shape(self) -> str:
        """The shape its moments say: square fills ~1 of its box, circle ~0.79, triangle ~0.5 and sits low."""
        if self.fill < 0.70 or self.drop >= 0.555:
            return "triangle"
        return "square" if self.fill >= 0.90 else "circle"

    @property
    def cell(self) -> tuple[int, int]:
        """The grid cell (row, column) its centroid lies in."""
        step = SIZE / GRID
        x, y = self.centre
        return (min(GRID - 1, int(y // step)), min(GRID - 1, int(x // step)))


@dataclass(frozen=True)
class Reading:
    """What the judge sees in a picture."""

    background: str
    blobs: tuple[Blob, ...]
    extents: tuple[int, ...]  # max(bbox width, height) of each blob

    def size_of(self, blob: Blob) -> str:
        """'large' or 'small', from the blob's extent."""
        return "large" if self.extents[self.blobs.index(blob)] >= LARGE_EXTENT else "small"


@dataclass(frozen=True)
class Verdict:
    """Whether one asked-for object was drawn right, attribute by attribute."""

    colour: bool
    shape: bool
    size: bool
    position: bool


def labels(image: np.ndarray) -> np.ndarray:
    """Each pixel's nearest palette colour, as an index into PALETTE's order."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    distances = ((pixels[:, None, :] - _RGB[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(distances.argmin(axis=1).reshape(image.shape[:2]))


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, as index arrays (ys, xs) stacked."""
    seen = np.zeros_like(mask, dtype=bool)
    height, width = mask.shape
    found: list[np.ndarray] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        stack = [(int(y0), int(x0))]
        seen[y0, x0] = True
        points = []
        while stack:
            y, x = stack.pop()
            points.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        found.append(np.array(points))
    return found


def read(image: np.ndarray) -> Reading:
    """Find the background and every object in an (H, W, 3) uint8 picture of SIZE x SIZE."""
    if image.shape != (SIZE, SIZE, 3):
        raise ValueError(f"the judge reads {SIZE}x{SIZE} RGB pictures, got {image.shape}")
    lab = labels(image)
    background = int(Counter(lab.ravel().tolist()).most_common(1)[0][0])
    blobs: list[Blob] = []
    extents: list[int] = []
    for index in sorted(set(lab.ravel().tolist()) - {background}):
        for points in _components(lab == index):
            if len(points) < MIN_AREA:
                continue
            ys, xs = points[:, 0], points[:, 1]
            h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
            blobs.append(
                Blob(
                    colour=_NAMES[index],
                    area=len(points),
                    centre=(float(xs.mean()) + 0.5, float(ys.mean()) + 0.5),
                    fill=len(points) / float(h * w),
                    drop=(float(ys.mean()) - float(ys.min()) + 0.5) / float(h),
                )
            )
            extents.append(int(max(h, w)))
    return Reading(background=_NAMES[background], blobs=tuple(blobs), extents=tuple(extents))


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
