"""Reading a picture of the shape world back into objects, without a model.

Colour clustering (each pixel to its nearest palette colour), connected components, then shape
moments: how much of its bounding box a blob fills (square 1, circle pi/4, triangle 1/2) and how
low its centroid sits in that box (an upright triangle's sits at 2/3 of its height) give the shape,
its extent the size, its centroid the grid cell. The thresholds sit between the values of exact
shapes and those of the same shapes after a VAE's blur.

Runtime code (numpy only): the worker's world masker reads the picture it edits with it, and the
offline judge (`training/world/judge.py`) scores pictures with the same reading.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from worker.world.scene import GRID, PALETTE, SIZE

_NAMES = tuple(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float64)
MIN_AREA = 16  # smaller specks are noise, not objects (a small triangle covers about 60 pixels)
LARGE_EXTENT = 15  # a blob at least this wide or tall is "large" (small shapes are 11, large 19)


@dataclass(frozen=True)
class Blob:
    """One object found in a picture."""

    colour: str
    area: int
    centre: tuple[float, float]  # x, y in pixels
    fill: float  # area / bounding-box area
    drop: float  # the centroid's height in the bounding box, from its top: 0.5 symmetric, 0.67 triangle
    # Its pixels, (SIZE, SIZE) booleans: what the world masker repaints.
    mask: np.ndarray = field(compare=False, repr=False)

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

    def attributes(self, blob: Blob) -> tuple[str, str, str, tuple[int, int]]:
        """What the blob reads as, in `Shape.attributes`' order: colour, shape, size, cell."""
        return blob.colour, blob.shape, self.size_of(blob), blob.cell


def labels(image: np.ndarray) -> np.ndarray:
    """Each pixel's nearest palette colour, as an index into PALETTE's order."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    distances = ((pixels[:, None, :] - _RGB[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(distances.argmin(axis=1).reshape(image.shape[:2]))


def components(mask: np.ndarray) -> list[np.ndarray]:
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
        for points in components(lab == index):
            if len(points) < MIN_AREA:
                continue
            ys, xs = points[:, 0], points[:, 1]
            h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
            pixels = np.zeros(lab.shape, dtype=bool)
            pixels[ys, xs] = True
            blobs.append(
                Blob(
                    colour=_NAMES[index],
                    area=len(points),
                    centre=(float(xs.mean()) + 0.5, float(ys.mean()) + 0.5),
                    fill=len(points) / float(h * w),
                    drop=(float(ys.mean()) - float(ys.min()) + 0.5) / float(h),
                    mask=pixels,
                )
            )
            extents.append(int(max(h, w)))
    return Reading(background=_NAMES[background], blobs=tuple(blobs), extents=tuple(extents))
