"""The offline benchmark's judging, on exact pictures of the world: right edits pass, wrong ones fail."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.offline_world import Turn, chat_right, in_language, judge_edit, outside_right
from training.agent.conversations import EDITS, held_back
from training.agent.lexicon import TONGUES

EDIT_SET = held_back(requests=1, edits=len(EDITS), chat=1).edits


@pytest.mark.parametrize("example", EDIT_SET[: len(EDITS)], ids=lambda e: e.kind)
def test_an_exact_edit_is_right_and_changes_nothing_outside(example: object) -> None:
    from training.agent.conversations import Example

    assert isinstance(example, Example) and example.parent is not None and example.scene is not None
    before, after = example.parent.render(), example.scene.render()
    verdict = judge_edit(example, before, after, example.scene.caption())
    assert verdict.caption_right and verdict.changed_right and verdict.rest_unchanged and verdict.right
    assert verdict.ratio == 0.0
    # The picture left as it was: the change is not there.
    unchanged = judge_edit(example, before, before, example.parent.caption())
    assert not unchanged.caption_right and not unchanged.changed_right and unchanged.ratio is None


def test_an_edit_that_also_moves_another_object_is_not_right() -> None:
    example = next(e for e in EDIT_SET if e.kind == "edit:recolour" and len(e.scene.shapes) > 1)  # type: ignore[union-attr]
    assert example.scene is not None and example.parent is not None
    changed = next(s for s in example.scene.shapes if s not in example.parent.shapes)
    other = next(s for s in example.scene.shapes if s is not changed)
    free = next((r, c) for r in range(3) for c in range(3) if (r, c) not in {s.cell for s in example.scene.shapes})
    shapes = tuple(replace(s, cell=free) if s is other else s for s in example.scene.shapes)
    verdict = judge_edit(example, example.parent.render(), replace(example.scene, shapes=shapes).render(), "")
    assert verdict.changed_right and not verdict.rest_unchanged and not verdict.right
    assert verdict.ratio is not None and verdict.ratio > 0.05


def test_chat_and_out_of_world_replies_are_judged_by_language_length_and_repeats() -> None:
    assert in_language("こんにちは！丸を描きます。", "ja") and not in_language("你好！我会画圆形。", "ja")
    assert in_language("你好！我会画圆形。", "zh") and not in_language("Hello there!", "zh")
    assert in_language("Hello there!", "en") and not in_language("こんにちは", "en")
    assert chat_right(Turn("hi", reply="Hello! I draw shapes."), "en")
    assert not chat_right(Turn("hi", reply="Hello! Hello!"), "en")  # a sentence twice
    assert not chat_right(Turn("hi", reply="word " * 70), "en")  # 300 characters or more
    assert not chat_right(Turn("hi", reply="Hello!", pictures=[(EDIT_SET[0].parent.render(), "x")]), "en")  # type: ignore[union-attr]
    for code, tongue in TONGUES.items():
        assert outside_right(Turn("x", reply=tongue.outside_reply), code)
        assert not outside_right(Turn("x", reply=tongue.chat_reply["greet"]), code)
