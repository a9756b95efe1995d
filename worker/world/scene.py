"""The shape world's grammar: its words, scenes of one to three flat shapes, their captions and masks.

Plain numpy and Python, no torch: the worker's world masker, the training command, the analytic
judge and the tests all read this one vocabulary, so a caption, a picture, a mask and a verdict
can never disagree about what "the top left" or "purple" means.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

SIZE = 64  # pixels per side of a scene
GRID = 3  # positions are the cells of a GRID x GRID grid

# Colours far apart in RGB, so that nearest-colour clustering reads a blurred picture reliably.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 215, 30),
    "purple": (150, 50, 200),
    "white": (245, 245, 245),
    "gray": (120, 120, 120),
    "black": (15, 15, 15),
}
OBJECT_COLOURS = ("red", "green", "blue", "yellow", "purple")
BACKGROUNDS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
# Side (square), diameter (circle) or base and height (triangle) in pixels.
EXTENT = {"small": 11, "large": 19}

# Cell (row, column) -> the canonical phrase and its paraphrases.
POSITIONS: dict[tuple[int, int], tuple[str, ...]] = {
    (0, 0): ("at the top left", "in the upper left"),
    (0, 1): ("at the top", "at the top center"),
    (0, 2): ("at the top right", "in the upper right"),
    (1, 0): ("on the left", "at the left"),
    (1, 1): ("in the center", "in the middle"),
    (1, 2): ("on the right", "at the right"),
    (2, 0): ("at the bottom left", "in the lower left"),
    (2, 1): ("at the bottom", "at the bottom center"),
    (2, 2): ("at the bottom right", "in the lower right"),
}
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}


@dataclass(frozen=True)
class Shape:
    """One object of a scene."""

    shape: str
    colour: str
    size: str
    cell: tuple[int, int]
    # Pixel offset of the centre from the cell's centre: the world is not a perfect grid.
    jitter: tuple[int, int] = (0, 0)

    def phrase(self, words: int = 0, position: int = 0) -> str:
        """'a small red circle at the top left' (or a paraphrase of it)."""
        size_word = SIZE_WORDS[self.size][words % len(SIZE_WORDS[self.size])]
        where = POSITIONS[self.cell][position % len(POSITIONS[self.cell])]
        return f"a {size_word} {self.colour} {self.shape} {where}"

    @property
    def attributes(self) -> tuple[str, str, str, tuple[int, int]]:
        """Colour, shape, size and cell: what a caption says of it (and a reading can check)."""
        return self.colour, self.shape, self.size, self.cell

    @property
    def centre(self) -> tuple[float, float]:
        """The shape's centre in pixels (x, y)."""
        step = SIZE / GRID
        return ((self.cell[1] + 0.5) * step + self.jitter[0], (self.cell[0] + 0.5) * step + self.jitter[1])


@dataclass(frozen=True)
class Scene:
    """A background colour and one to three shapes in distinct cells and distinct colours."""

    background: str
    shapes: tuple[Shape, ...]

    @property
    def key(self) -> tuple[object, ...]:
        """What a caption pins down (jitter aside): two scenes with one key share every caption."""
        return (self.background, tuple(sorted((s.shape, s.colour, s.size, s.cell) for s in self.shapes)))

    def caption(self) -> str:
        """The exact, canonical caption."""
        return _join([s.phrase() for s in self.shapes]) + f", on a {self.background} background"

    def paraphrases(self, rng: random.Random, count: int = 3) -> list[str]:
        """Other wordings of the same scene: object order, synonyms, the background first."""
        out: list[str] = []
        for _ in range(count):
            order = list(self.shapes)
            rng.shuffle(order)
            phrases = _join([s.phrase(rng.randrange(2), rng.randrange(2)) for s in order])
            if rng.random() < 0.5:
                out.append(f"{phrases}, on a {self.background} background")
            else:
                out.append(f"a {self.background} background with {phrases}")
        return out

    def masks(self) -> np.ndarray:
        """Each shape's exact mask, (n, SIZE, SIZE) booleans, in the order of `shapes`.

        A later shape is drawn over an earlier one; cells are distinct, so they rarely touch.
        """
        return np.stack([shape_mask(s) for s in self.shapes])

    def render(self) -> np.ndarray:
        """The picture, (SIZE, SIZE, 3) uint8."""
        image = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
        image[:] = PALETTE[self.background]
        for s, mask in zip(self.shapes, self.masks(), strict=True):
            image[mask] = PALETTE[s.colour]
        return image


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def shape_mask(s: Shape) -> np.ndarray:
    """The exact pixels a shape covers."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    cx, cy = s.centre
    half = EXTENT[s.size] / 2
    if s.shape == "circle":
        return np.asarray((xs - cx) ** 2 + (ys - cy) ** 2 <= half**2)
    if s.shape == "square":
        return np.asarray((np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half))
    # An upright isosceles triangle: apex at the top, base at the bottom.
    top, bottom = cy - half, cy + half
    width_at = (ys - top) / (bottom - top) * half  # half-width at each row
    return np.asarray((ys >= top) & (ys <= bottom) & (np.abs(xs - cx) <= width_at))


def vocabulary() -> list[str]:
    """Every word a caption or paraphrase can use (the tokenizer gives each one token)."""
    words = {"a", "and", "on", "background", "with", *PALETTE, *SHAPES}
    for names in SIZE_WORDS.values():
        words.update(names)
    for phrases in POSITIONS.values():
        for phrase in phrases:
            words.update(phrase.split())
    return sorted(words)
