"""The world masker masks exactly what an edit changes: each edit kind, pixel for pixel, on exact pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from worker.errors import BadRequest
from worker.world.masker import WorldMasker, edit_region
from worker.world.scene import Scene, Shape, shape_mask

CIRCLE = Shape("circle", "red", "large", (1, 1))
SQUARE = Shape("square", "blue", "small", (0, 0))
TRIANGLE = Shape("triangle", "green", "small", (2, 2))
SCENE = Scene(background="white", shapes=(CIRCLE, SQUARE, TRIANGLE))


def within(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Every pixel at most `pixels` steps (up, down, left, right) from the mask: computed by distance, not dilation."""
    ys, xs = np.nonzero(mask)
    grid_y, grid_x = np.mgrid[0:64, 0:64]
    distance = np.abs(grid_y[..., None] - ys).astype(int) + np.abs(grid_x[..., None] - xs)
    return np.asarray(distance.min(axis=-1) <= pixels)


def replaced(old: Shape, new: Shape | None) -> Scene:
    """SCENE with one object swapped for another (or dropped)."""
    return Scene(SCENE.background, tuple(new if s == old else s for s in SCENE.shapes if s != old or new))


def _region(new: Scene, words: str, picture: np.ndarray | None = None) -> np.ndarray:
    region = edit_region(SCENE.render() if picture is None else picture, new.caption(), words)
    return region.mask


@pytest.mark.parametrize(
    ("kind", "old", "new", "words"),
    [
        ("recolour", CIRCLE, Shape("circle", "yellow", "large", (1, 1)), "the red circle"),
        ("reshape", CIRCLE, Shape("square", "red", "large", (1, 1)), "the red circle"),
        ("resize", CIRCLE, Shape("circle", "red", "small", (1, 1)), "the big circle"),
        ("move", CIRCLE, Shape("circle", "red", "large", (0, 2)), "the circle in the middle"),
    ],
)
def test_a_changed_object_is_masked_where_it_was_and_where_it_will_be(
    kind: str, old: Shape, new: Shape, words: str
) -> None:
    mask = _region(replaced(old, new), words)
    assert np.array_equal(mask, within(shape_mask(old), 2) | within(shape_mask(new), 3)), kind
    assert not (mask & (shape_mask(SQUARE) | shape_mask(TRIANGLE))).any()


def test_an_added_object_is_masked_where_it_will_be() -> None:
    added = Shape("square", "purple", "large", (2, 0))
    new = Scene(SCENE.background, (*SCENE.shapes, added))
    assert np.array_equal(_region(new, "a purple square"), within(shape_mask(added), 3))


def test_a_removed_object_is_masked_where_it_was() -> None:
    assert np.array_equal(_region(replaced(TRIANGLE, None), "the green triangle"), within(shape_mask(TRIANGLE), 2))


def test_a_new_background_masks_everything_but_the_objects() -> None:
    new = Scene("black", SCENE.shapes)
    assert np.array_equal(_region(new, "the background"), ~SCENE.masks().any(axis=0))


def test_the_words_keep_the_mask_to_the_object_they_name() -> None:
    """The caption also changes the triangle (an LLM's slip): "the red circle" keeps the edit to the circle."""
    recoloured = Shape("circle", "yellow", "large", (1, 1))
    new = Scene(SCENE.background, (recoloured, SQUARE, Shape("triangle", "purple", "small", (2, 2))))
    assert np.array_equal(_region(new, "the red circle"), within(shape_mask(CIRCLE), 3))


def test_an_object_drawn_as_another_shape_is_not_repainted_for_an_edit_elsewhere() -> None:
    """The picture's blue square came out round: recolouring the red circle leaves it alone."""
    drawn = Scene(SCENE.background, (CIRCLE, Shape("circle", "blue", "small", (0, 0)), TRIANGLE)).render()
    new = replaced(CIRCLE, Shape("circle", "yellow", "large", (1, 1)))
    assert np.array_equal(_region(new, "the red circle", drawn), within(shape_mask(CIRCLE), 3))


def test_a_reshape_is_found_from_the_caption_when_the_words_name_nothing() -> None:
    new = replaced(SQUARE, Shape("triangle", "blue", "small", (0, 0)))
    expected = within(shape_mask(SQUARE), 2) | within(shape_mask(Shape("triangle", "blue", "small", (0, 0))), 3)
    assert np.array_equal(_region(new, "it"), expected)


def test_words_alone_mask_the_object_when_the_caption_is_not_the_worlds() -> None:
    region = edit_region(SCENE.render(), "a red dragon breathing fire", "the red circle")
    assert np.array_equal(region.mask, within(shape_mask(CIRCLE), 2))


def test_the_masker_answers_at_the_pictures_size_and_refuses_when_nothing_changes() -> None:
    masker = WorldMasker()
    big = Image.fromarray(SCENE.render()).resize((128, 128), Image.Resampling.NEAREST)
    new = replaced(TRIANGLE, None)
    mask = masker.mask(big, "the green triangle", prompt=new.caption())
    assert (mask.mode, mask.size) == ("L", (128, 128))
    small = np.asarray(mask.resize((64, 64), Image.Resampling.NEAREST)) > 0
    assert np.array_equal(small, within(shape_mask(TRIANGLE), 2))
    with pytest.raises(BadRequest, match="couldn't find 'the dragon'"):
        masker.mask(Image.fromarray(SCENE.render()), "the dragon", prompt=SCENE.caption())


def test_a_caption_that_changes_nothing_redraws_what_the_words_name() -> None:
    assert np.array_equal(_region(SCENE, "the blue square"), within(shape_mask(SQUARE), 2))
