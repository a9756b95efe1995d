"""Chat edits in the world, judged on exact pictures: what counts as the change read right, the rest unchanged."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from training.world.edits import KINDS, attribute_right, inside, make_edit, rest_unchanged, world_edits
from training.world.scenes import Scene, Shape, held_out_scenes, shape_mask
from worker.world.masker import grow
from worker.world.reading import read

TWO = Scene("white", (Shape("circle", "red", "large", (1, 1)), Shape("square", "blue", "small", (0, 0))))


def test_each_kind_changes_only_what_it_names() -> None:
    rng = random.Random(0)
    for kind in KINDS:
        edit = make_edit(kind, TWO, rng)
        assert edit is not None and edit.kind == kind and edit.before == TWO
        if kind == "background":
            assert edit.after.shapes == TWO.shapes and edit.after.background != "white"
            assert edit.words == "the background"
        elif kind == "add":
            assert edit.after.shapes[:2] == TWO.shapes and edit.new == edit.after.shapes[2]
            assert edit.words == f"a {edit.new.colour} {edit.new.shape}"
        elif kind == "remove":
            assert edit.after.shapes == TWO.shapes[1:] and edit.old == TWO.shapes[0] and edit.new is None
        else:
            assert edit.words == "the red circle" and edit.after.shapes[1:] == TWO.shapes[1:]
            changed = [
                a for a, b in zip(TWO.shapes[0].attributes, edit.after.shapes[0].attributes, strict=True) if a != b
            ]
            assert len(changed) == 1, (kind, edit.after)


def test_a_scene_that_cannot_take_an_edit_is_skipped() -> None:
    one = Scene("white", TWO.shapes[:1])
    assert make_edit("remove", one, random.Random(0)) is None  # the last object stays
    three = Scene("white", (*TWO.shapes, Shape("triangle", "green", "small", (2, 2))))
    assert make_edit("add", three, random.Random(0)) is None  # three objects at most


def test_the_set_has_each_kind_in_turn_and_is_seeded() -> None:
    edits = world_edits(held_out_scenes(), 3)
    assert [e.kind for e in edits] == list(KINDS) * 3
    assert Counter(e.kind for e in edits) == dict.fromkeys(KINDS, 3)
    assert edits == world_edits(held_out_scenes(), 3)


@pytest.mark.parametrize("kind", KINDS)
def test_an_exact_edit_reads_right_and_leaves_the_rest(kind: str) -> None:
    edit = make_edit(kind, TWO, random.Random(1))
    assert edit is not None
    before, after = read(edit.before.render()), read(edit.after.render())
    assert attribute_right(edit, before, after) and rest_unchanged(edit, before, after)


def test_an_edit_that_did_nothing_is_wrong() -> None:
    edit = make_edit("recolour", TWO, random.Random(0))
    assert edit is not None
    picture = read(TWO.render())
    assert not attribute_right(edit, picture, picture) and rest_unchanged(edit, picture, picture)


def test_a_changed_neighbour_or_background_counts_against_the_edit() -> None:
    edit = make_edit("recolour", TWO, random.Random(0))
    assert edit is not None and edit.new is not None
    before = read(TWO.render())
    moved = read(Scene("white", (edit.new, replace(TWO.shapes[1], cell=(2, 0)))).render())
    assert attribute_right(edit, before, moved) and not rest_unchanged(edit, before, moved)
    dark = read(Scene("black", edit.after.shapes).render())
    assert attribute_right(edit, before, dark) and not rest_unchanged(edit, before, dark)


def test_a_move_that_leaves_its_old_place_painted_is_wrong() -> None:
    edit = make_edit("move", TWO, random.Random(0))
    assert edit is not None and edit.new is not None
    both = read(Scene("white", (*TWO.shapes, replace(edit.new, colour="red"))).render())
    assert not attribute_right(edit, read(TWO.render()), both)


def test_inside_is_the_object_before_and_after_or_all_but_the_objects() -> None:
    move = make_edit("move", TWO, random.Random(0))
    assert move is not None and move.new is not None
    before, after = read(move.before.render()), read(move.after.render())
    assert np.array_equal(
        inside(move, before, after), grow(shape_mask(TWO.shapes[0]), 2) | grow(shape_mask(move.new), 2)
    )
    background = make_edit("background", TWO, random.Random(0))
    assert background is not None
    assert np.array_equal(inside(background, before, before), ~TWO.masks().any(axis=0))
