"""The shape world's random scenes: training sets and the held-back set the judge scores.

The world's grammar (words, scenes, captions, masks) is runtime code in `worker.world.scene`, which
the worker's masker reads too; it is re-exported here for the training tools.
"""

from __future__ import annotations

import random

from worker.world.scene import (
    BACKGROUNDS,
    EXTENT,
    GRID,
    OBJECT_COLOURS,
    PALETTE,
    POSITIONS,
    SHAPES,
    SIZE,
    SIZE_WORDS,
    SIZES,
    Scene,
    Shape,
    shape_mask,
    vocabulary,
)

__all__ = [
    "BACKGROUNDS", "EXTENT", "GRID", "HELD_OUT_SEED", "OBJECT_COLOURS", "PALETTE", "POSITIONS", "SHAPES", "SIZE",
    "SIZES", "SIZE_WORDS", "Scene", "Shape", "held_out_scenes", "sample_scene", "shape_mask", "training_scenes",
    "vocabulary",
]  # fmt: skip


def sample_scene(rng: random.Random, max_shapes: int = 3) -> Scene:
    """A random scene: one to `max_shapes` shapes, distinct cells and colours, a background unlike them."""
    count = rng.randint(1, max_shapes)
    cells = rng.sample(sorted(POSITIONS), count)
    colours = rng.sample(OBJECT_COLOURS, count)
    shapes = tuple(
        Shape(
            shape=rng.choice(SHAPES),
            colour=colour,
            size=rng.choice(SIZES),
            cell=cell,
            jitter=(rng.randint(-2, 2), rng.randint(-2, 2)),
        )
        for cell, colour in zip(cells, colours, strict=True)
    )
    background = rng.choice([c for c in BACKGROUNDS if c not in colours])
    return Scene(background=background, shapes=shapes)


HELD_OUT_SEED = 16_016


def held_out_scenes(count: int = 100) -> list[Scene]:
    """The held-back scenes: the judge's test set, never trained on (training skips their keys)."""
    rng = random.Random(HELD_OUT_SEED)
    scenes: list[Scene] = []
    seen: set[tuple[object, ...]] = set()
    while len(scenes) < count:
        scene = sample_scene(rng)
        if scene.key not in seen:
            seen.add(scene.key)
            scenes.append(scene)
    return scenes


def training_scenes(count: int, seed: int, exclude: set[tuple[object, ...]]) -> list[Scene]:
    """`count` random scenes, none of them sharing a key with `exclude` (the held-back set)."""
    rng = random.Random(seed)
    scenes: list[Scene] = []
    while len(scenes) < count:
        scene = sample_scene(rng)
        if scene.key not in exclude:
            scenes.append(scene)
    return scenes
