"""The world adapter's input and output formats, and the grammar that keeps its answers in the world."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.decision import to_message
from agent.seeing import history_note
from agent.worldtalk import (
    REPLIED,
    Answer,
    AnswerGuide,
    PictureLine,
    Vocabulary,
    adapter_chat,
    caption_fits,
    parse_answer,
    pictures_in,
    render_answer,
)
from tools.image_tools import image_tools
from tools.stores.history import Generation
from training.agent.conversations import vocabulary
from training.world.scenes import held_out_scenes

WORLD = vocabulary()
RED = "a large red circle in the center, on a white background"
TWO = "a small blue square at the top left and a large yellow triangle at the bottom right, on a black background"


def generation(id_: str, prompt: str, kind: str = "generate", parent: str | None = None) -> Generation:
    return Generation(
        id=id_, conversation="c", user_id="u", user_words="w", prompt=prompt, negative_prompt=None, seed=1,
        width=64, height=64, steps=12, model="world", kind=kind, file="f.png", parent_id=parent,
    )  # fmt: skip


def test_the_pictures_are_read_from_the_agents_history_note() -> None:
    three = (
        "a large green circle on the left, a small purple square at the top right and a large blue triangle at the "
        "bottom, on a gray background"
    )
    mine = [generation(f"id{n}", RED) for n in range(1, 4)]
    mine += [generation("k3mf", three, "region", parent="id3"), generation("x8pq", TWO)]
    note = history_note(mine, replied=replace(mine[1], caption="a red blob"))
    assert pictures_in(note) == [
        PictureLine("#2", "id2", RED),
        PictureLine("#3", "id3", RED),
        PictureLine("#4", "k3mf", three),
        PictureLine("#5", "x8pq", TWO),
        PictureLine("reply", "id2", RED),
    ]
    assert pictures_in(history_note([])) == []


def test_the_adapter_reads_one_line_of_system_then_the_pictures() -> None:
    chat = adapter_chat([PictureLine("#1", "k3mf", RED), PictureLine("reply", "k3mf", RED)], "make the circle blue")
    assert chat == [
        {"role": "system", "content": f"egaku world\n#1 k3mf: {RED}\nreply k3mf: {RED}"},
        {"role": "user", "content": "make the circle blue"},
    ]


@pytest.mark.parametrize(
    ("answer", "written"),
    [
        (Answer("draw", "Here it is!", caption=RED), f"draw\n{RED}\nHere it is!"),
        (
            Answer("edit", "Done.", caption=TWO, ref="k3mf", target="the blue square"),
            f"edit k3mf the blue square\n{TWO}\nDone.",
        ),
        (Answer("reply", "こんにちは！"), "reply\nこんにちは！"),
    ],
)
def test_answers_are_written_and_read_back(answer: Answer, written: str) -> None:
    assert render_answer(answer) == written
    assert parse_answer(written) == answer


@pytest.mark.parametrize("raw", ["", "draw", f"draw\n{RED}", f"draw\n{RED}\n", "reply\n", "edit last\nx\ny", "hello"])
def test_a_broken_answer_is_none(raw: str) -> None:
    assert parse_answer(raw) is None


def test_an_edit_becomes_the_region_edit_the_world_masker_expects() -> None:
    answer = Answer("edit", "Done.", caption=RED.replace("red", "blue"), ref="last", target="the red circle")
    call = to_message(answer.decision(), image_tools()).tool_calls[0]
    assert (call["name"], call["args"]) == (
        "edit_image",
        {"ref": "last", "prompt": RED.replace("red", "blue"), "mode": "region", "target": "the red circle",
         "reply": "Done."},
    )  # fmt: skip
    draw = to_message(Answer("draw", "Here it is!", caption=RED).decision(), image_tools()).tool_calls[0]
    assert (draw["name"], draw["args"]) == ("generate_image", {"prompt": RED, "reply": "Here it is!"})
    assert to_message(Answer("reply", "Hi!").decision(), image_tools()).content == "Hi!"


def test_every_held_back_caption_is_in_the_grammar_and_paraphrases_are_not() -> None:
    for scene in held_out_scenes():
        caption = scene.caption()
        assert caption_fits(WORLD, caption, complete=True)
        assert all(caption_fits(WORLD, caption[:n], complete=False) for n in range(len(caption)))
    assert not caption_fits(WORLD, "a big red circle in the middle, on a white background", complete=False)
    assert not caption_fits(WORLD, RED.removesuffix(", on a white background"), complete=True)
    assert not caption_fits(WORLD, RED + " and", complete=False)
    assert not caption_fits(WORLD, "a large orange circle", complete=False)
    four = "a large red circle on the left, a large blue circle in the center, a large green circle on the right"
    assert not caption_fits(WORLD, four, complete=False)
    # As in every scene of the world: no colour or place twice, and a background unlike the objects.
    assert not caption_fits(WORLD, "a large red circle on the left and a small red square", complete=False)
    assert not caption_fits(WORLD, "a large red circle on the left and a small blue square on the left", complete=False)
    assert not caption_fits(WORLD, "a large red circle on the left, on a red", complete=False)
    assert caption_fits(
        WORLD, "a large red circle on the left, a small blue square at the top left and a", complete=False
    )


def test_the_guide_allows_only_answers_of_the_grammar() -> None:
    guide = AnswerGuide(WORLD, [PictureLine("#1", "k3mf", RED)])
    assert guide.viable("") and guide.viable("ed") and guide.viable("edit k3mf the r")
    assert guide.viable("edit last the background\na large") and not guide.viable("edit last the background\na small")
    assert guide.viable("draw\n") and guide.viable("draw\na small") and guide.viable(f"draw\n{RED[:-1]}")
    assert guide.viable("edit k3mf the red circle\n") and guide.viable("edit reply the red circle\na large")
    assert not guide.viable("edit zzzz")  # only the shown pictures' ids, last, or reply
    assert not guide.viable("edit last the red dragon")
    assert not guide.viable("paint")
    assert not guide.complete(f"draw\n{RED}")  # the reply is missing
    assert not guide.viable(f"draw\n{RED}x")
    assert guide.viable(f"draw\n{RED}\nHere") and guide.complete(f"draw\n{RED}\nHere it is!")
    assert not guide.viable(f"draw\n{RED}\nHere\nmore")
    assert guide.viable("reply\nこんにちは") and guide.complete("reply\nこんにちは") and not guide.complete("reply\n")
    assert not guide.viable("reply\nhi\nthere")


def test_an_edit_may_not_write_back_the_caption_of_the_picture_it_edits() -> None:
    pictures = [PictureLine("#1", "k3mf", TWO), PictureLine("#2", "p2q4", RED), PictureLine(REPLIED, "z9x8", TWO)]
    guide = AnswerGuide(WORLD, pictures)
    for ref, source in (("last", RED), ("p2q4", RED), ("k3mf", TWO), ("reply", TWO)):
        head = f"edit {ref} the background"
        assert not guide.complete(f"{head}\n{source}\nDone!"), ref
        # Every start of it stays open up to the background's first letter, which here begins no other
        # background the scene allows (blue, an object's colour, is not one).
        cut = source.rindex(" on a ") + len(" on a ")
        assert [n for n in range(len(source) + 1) if guide.viable(f"{head}\n{source[:n]}")] == list(range(cut + 1))
    # With no pictures shown, "last" and "reply" edit nothing the guide knows: the grammar alone holds.
    alone = AnswerGuide(WORLD, [])
    assert alone.complete(f"edit last the red circle\n{RED}\nDone!") and alone.viable(
        f"edit reply the red circle\n{RED}"
    )


def test_an_edit_changes_what_its_head_names_and_nothing_else() -> None:
    three = (
        "a large green circle on the left, a small purple square at the top right and a large blue triangle at the "
        "bottom, on a gray background"
    )
    pictures = [PictureLine("#1", "k3mf", TWO), PictureLine("#2", "p2q4", RED), PictureLine("#3", "t3r3", three)]
    guide = AnswerGuide(WORLD, pictures)

    def allowed(head: str, caption: str) -> bool:
        return guide.complete(f"{head}\n{caption}\nDone!")

    # The object named may change in any way, or go; the rest stays as it was, where it was in the caption.
    assert allowed("edit p2q4 the red circle", "a large blue circle in the center, on a white background")
    assert allowed("edit last the green circle", three.replace("large green circle", "small green circle"))
    assert allowed("edit k3mf the blue square", TWO.replace("blue square at the top left", "blue square on the right"))
    assert allowed("edit k3mf the blue square", "a large yellow triangle at the bottom right, on a black background")
    assert allowed("edit k3mf the blue square", TWO.replace("small blue square", "large red circle"))
    assert not allowed("edit k3mf the blue square", TWO.replace("large yellow", "small yellow"))
    assert not allowed("edit k3mf the blue square", TWO.replace("black background", "white background"))
    assert not allowed("edit p2q4 the red circle", "a large red circle in the center, on a black background")
    assert not allowed("edit k3mf the blue square", TWO.replace("blue", "yellow"))  # a colour the scene keeps
    # A colour the scene lacks is an object added, last; the background changes alone.
    added = (
        "a small blue square at the top left, a large yellow triangle at the bottom right and a small red circle "
        "in the center, on a black background"
    )
    assert allowed("edit k3mf the red circle", added)
    first = (
        "a small red circle in the center, a small blue square at the top left and a large yellow triangle at the "
        "bottom right, on a black background"
    )
    assert not allowed("edit k3mf the red circle", first)
    assert not allowed("edit k3mf the red circle", RED)  # another picture's caption is no edit of this one
    assert allowed("edit k3mf the background", TWO.replace("black background", "white background"))
    assert not allowed("edit k3mf the background", TWO.replace("black background", "blue background"))
    # A full scene takes no fourth object: that head is closed from its first letters.
    assert guide.viable("edit t3r3 the g") and not guide.viable("edit t3r3 the r")
    # A picture whose caption the guide cannot read (an upload's) has the caption grammar only.
    upload = AnswerGuide(WORLD, [PictureLine(REPLIED, "up01", "a cat asleep on a sofa")])
    assert upload.complete(f"edit reply the red circle\n{RED}\nDone!")
    # The runtime weighs the allowed captions whole: few, sorted, and none where the grammar alone holds.
    assert guide.options("edit k3mf the background") == tuple(
        TWO.replace("black background", f"{b} background") for b in ("gray", "green", "purple", "red", "white")
    )
    circles = [t.phrase for t in WORLD.objects if t.colour == "red" and t.shape == "circle"]
    free = [c for c in circles if not c.endswith(("at the top left", "at the bottom right"))]
    assert guide.options("edit k3mf the red circle") == tuple(
        sorted(added.replace("a small red circle in the center", c) for c in free)
    )
    # The blue square becomes any object of a colour and a place the rest leave (4 x 3 shapes x 2 sizes x 8,
    # less itself), or goes.
    assert len(guide.options("edit k3mf the blue square") or ()) == 4 * 3 * 2 * 8 - 1 + 1
    assert guide.options("edit t3r3 the red circle") == ()
    # The scene's blue object is a square: "the blue circle" names nothing in it, so that head is closed.
    assert guide.options("edit k3mf the blue circle") == () and not guide.viable("edit k3mf the blue circle\n")
    assert guide.options("draw") is None and upload.options("edit reply the red circle") is None


def test_the_vocabulary_round_trips_through_its_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "world.json"
    path.write_text(WORLD.as_json(), encoding="utf-8")
    assert Vocabulary.load(path) == WORLD
    assert len(WORLD.objects) == 2 * 5 * 3 * 9 and WORLD.objects[0].phrase == "a small red circle at the top left"
    assert Vocabulary.load(path).objects == WORLD.objects
