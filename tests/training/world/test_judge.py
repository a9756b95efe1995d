"""The analytic judge reads the world's exact pictures perfectly, and notices each kind of mistake."""

from __future__ import annotations

import numpy as np
import pytest

from training.world.judge import Verdict, edit_change, fidelity, judge, read
from training.world.scenes import PALETTE, Scene, Shape, held_out_scenes

CIRCLE = Shape(shape="circle", colour="red", size="small", cell=(0, 0))
SQUARE = Shape(shape="square", colour="blue", size="large", cell=(2, 2))
SCENE = Scene(background="yellow", shapes=(CIRCLE, SQUARE))


def test_exact_renders_of_the_held_back_set_score_perfectly() -> None:
    scenes = held_out_scenes()
    result = fidelity([s.render() for s in scenes], scenes)
    assert result.objects == sum(len(s.shapes) for s in scenes)
    assert (result.colour, result.shape, result.size, result.position, result.all_four, result.background) == (
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    )  # fmt: skip


def test_the_reading_names_colour_shape_and_cell() -> None:
    reading = read(SCENE.render())
    assert reading.background == "yellow"
    assert sorted((b.colour, b.shape, b.cell) for b in reading.blobs) == [
        ("blue", "square", (2, 2)),
        ("red", "circle", (0, 0)),
    ]


@pytest.mark.parametrize(
    ("drawn", "verdict"),
    [
        (Shape("circle", "green", "small", (0, 0)), Verdict(colour=False, shape=True, size=True, position=True)),
        (Shape("triangle", "red", "small", (0, 0)), Verdict(colour=True, shape=False, size=True, position=True)),
        (Shape("circle", "red", "large", (0, 0)), Verdict(colour=True, shape=True, size=False, position=True)),
        (Shape("circle", "red", "small", (1, 2)), Verdict(colour=True, shape=True, size=True, position=False)),
    ],
)
def test_each_wrong_attribute_is_caught_alone(drawn: Shape, verdict: Verdict) -> None:
    picture = Scene(background="yellow", shapes=(drawn, SQUARE)).render()
    background_ok, verdicts = judge(picture, SCENE)
    assert background_ok
    assert verdicts == [verdict, Verdict(colour=True, shape=True, size=True, position=True)]


def test_a_missing_object_fails_every_attribute_and_a_wrong_background_is_seen() -> None:
    picture = np.empty((64, 64, 3), dtype=np.uint8)
    picture[:] = PALETTE["white"]
    background_ok, verdicts = judge(picture, SCENE)
    assert not background_ok
    assert verdicts == [Verdict(colour=False, shape=False, size=False, position=False)] * 2


def test_mild_noise_does_not_change_the_reading() -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(SCENE.render().astype(np.int16) + rng.integers(-30, 31, (64, 64, 3)), 0, 255).astype(np.uint8)
    assert judge(noisy, SCENE) == judge(SCENE.render(), SCENE)


def test_edit_change_separates_inside_from_outside() -> None:
    before = SCENE.render()
    recoloured = Scene(background="yellow", shapes=(Shape("circle", "green", "small", (0, 0)), SQUARE))
    change = edit_change(before, recoloured.render(), SCENE.masks()[0])
    assert change.outside == 0.0
    expected = np.abs(np.array(PALETTE["red"]) - np.array(PALETTE["green"])).mean()
    assert change.inside == pytest.approx(expected)
    assert change.ratio == 0.0


def test_the_judge_refuses_other_sizes() -> None:
    with pytest.raises(ValueError, match="64x64"):
        read(np.zeros((32, 32, 3), dtype=np.uint8))


def test_large_shapes_are_read_through_a_blur() -> None:
    """A VAE softens edges; the judge still tells large shapes apart (small ones blur towards discs)."""
    from PIL import Image, ImageFilter

    shapes = (
        Shape("circle", "red", "large", (0, 0)),
        Shape("square", "blue", "large", (0, 2)),
        Shape("triangle", "green", "large", (2, 1)),
    )
    scene = Scene(background="white", shapes=shapes)
    blurred = np.asarray(Image.fromarray(scene.render()).filter(ImageFilter.GaussianBlur(1.0)))
    background_ok, verdicts = judge(blurred, scene)
    assert background_ok
    assert verdicts == [Verdict(colour=True, shape=True, size=True, position=True)] * 3
