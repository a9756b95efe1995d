"""The world's sentences read back exactly: every caption and paraphrase, and an edit's target words."""

from __future__ import annotations

import random

import pytest

from training.world.scenes import held_out_scenes
from worker.world.caption import CaptionError, Target, parse_caption, parse_target
from worker.world.scene import Scene, Shape


def test_every_held_back_caption_and_paraphrase_parses_back_to_its_scene() -> None:
    rng = random.Random(0)
    for scene in held_out_scenes():
        for caption in [scene.caption(), *scene.paraphrases(rng, count=3)]:
            assert parse_caption(caption).key == scene.key, caption


def test_a_caption_gives_objects_in_its_order_centred_in_their_cells() -> None:
    scene = parse_caption(
        "A big red circle in the middle and a little blue square at the top left, on a white background."
    )
    assert scene == Scene(
        background="white",
        shapes=(Shape("circle", "red", "large", (1, 1)), Shape("square", "blue", "small", (0, 0))),
    )


def test_a_background_alone_is_an_empty_scene() -> None:
    assert parse_caption("a black background") == Scene(background="black", shapes=())


@pytest.mark.parametrize(
    "text",
    [
        "a dragon in the center, on a white background",
        "a large red circle in the center",
        "a large red circle in the center, on a pink background",
        "a large red circle in the center and, on a white background",
    ],
)
def test_anything_outside_the_grammar_is_refused(text: str) -> None:
    with pytest.raises(CaptionError):
        parse_caption(text)


@pytest.mark.parametrize(
    ("words", "target"),
    [
        ("the red circle", Target(colour="red", shape="circle")),
        ("The circle at the top left", Target(shape="circle", cell=(0, 0))),
        ("the small squares in the upper right", Target(shape="square", size="small", cell=(0, 2))),
        ("the big one on the left", Target(size="large", cell=(1, 0))),
        ("the top one", Target(cell=(0, 1))),
        ("the white background", Target(background=True)),
        ("it", Target()),
    ],
)
def test_target_words_name_what_they_say(words: str, target: Target) -> None:
    assert parse_target(words) == target


def test_a_target_picks_objects_by_the_attributes_it_names() -> None:
    target = Target(colour="red", cell=(1, 1))
    assert target.names_an_object
    assert target.picks("red", "square", "small", (1, 1))
    assert not target.picks("red", "square", "small", (0, 1))
    assert not Target(background=True).names_an_object
