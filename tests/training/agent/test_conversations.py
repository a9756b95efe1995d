"""The agent's synthetic conversations: seeded, in the answer grammar, and a held-back set kept apart."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

from agent.worldtalk import LAST, REPLIED, Answer, AnswerGuide, parse_answer, render_answer
from training.agent.conversations import (
    DEFAULT_BACKGROUND,
    DEFAULT_LAYOUT,
    EDITS,
    FIFTH,
    FIRST,
    FOURTH,
    REPLYING,
    SECOND,
    SIXTH,
    THIRD,
    Example,
    defaulted,
    fingerprint,
    held_back,
    held_scenes,
    training_examples,
    vocabulary,
)
from training.agent.lexicon import CHINESE, ENGLISH, JAPANESE, Frames
from training.world.scenes import Scene, held_out_scenes

WORLD = vocabulary()
SAMPLE = list(itertools.islice(training_examples(3000), 3000))


def test_the_stream_is_seeded() -> None:
    assert fingerprint(list(training_examples(200))) == fingerprint(SAMPLE[:200])
    assert fingerprint(list(training_examples(200, seed=1))) != fingerprint(SAMPLE[:200])


def test_every_answer_is_in_the_grammar_and_reads_back() -> None:
    for example in SAMPLE:
        written = render_answer(example.answer)
        assert AnswerGuide(WORLD, example.pictures).complete(written), written
        assert parse_answer(written) == example.answer
        if example.scene is not None:
            assert example.answer.caption == example.scene.caption()


def test_the_mix_covers_every_kind_in_every_language() -> None:
    seen = {(e.language, e.kind) for e in SAMPLE}
    kinds = {"request", "chat", "outside"} | {f"edit:{k}" for k in EDITS}
    assert seen == {(lang, kind) for lang in ("en", "ja", "zh") for kind in kinds}


def test_edits_name_the_picture_they_change() -> None:
    for example in (e for e in SAMPLE if e.kind.startswith("edit:")):
        answer = example.answer
        assert example.parent is not None
        ids = {p.id: p for p in example.pictures}
        if answer.ref == LAST:
            assert example.pictures[-1].label != REPLIED or example.how == "reply"
            assert [p for p in example.pictures if p.label != REPLIED][-1].prompt == example.parent.caption()
        elif answer.ref == REPLIED:
            assert example.text.startswith(REPLYING)
            assert example.pictures[-1].label == REPLIED and example.pictures[-1].prompt == example.parent.caption()
        else:
            assert ids[answer.ref].prompt == example.parent.caption()
            if example.how == "id":
                assert answer.ref in example.text
        changed = {s.colour for s in example.parent.shapes} ^ {s.colour for s in example.scene.shapes}  # type: ignore[union-attr]
        if example.kind == "edit:background":
            assert answer.target == "the background" and not changed
        elif example.kind == "edit:add":
            assert answer.target.split()[1] in changed and len(example.scene.shapes) == len(example.parent.shapes) + 1  # type: ignore[union-attr]
        else:
            assert answer.target in {f"the {s.colour} {s.shape}" for s in example.parent.shapes}


def test_words_left_out_are_the_worlds_defaults() -> None:
    colours = "|".join(w for words in ENGLISH.colour_nouns.values() for w in words)
    requests = [e for e in SAMPLE if e.kind == "request" and e.language == "en"]
    unsaid = [e for e in requests if not re.search(rf"background|\bon ({colours})\b", e.text.lower())]
    assert len(unsaid) > 50
    assert all(e.scene is not None and e.scene.background == DEFAULT_BACKGROUND for e in unsaid)
    placeless = [
        e for e in requests if not re.search(r"\b(top|bottom|left|right|cent(er|re)|middle)\b", e.text.lower())
    ]
    assert len(placeless) > 20
    assert all(
        e.scene and tuple(s.cell for s in e.scene.shapes) == DEFAULT_LAYOUT[len(e.scene.shapes)] for e in placeless
    )
    scene = held_out_scenes(1)[0]
    assert defaulted(scene).background == DEFAULT_BACKGROUND
    assert tuple(s.cell for s in defaulted(scene).shapes) == DEFAULT_LAYOUT[len(scene.shapes)]
    assert {s.size for s in defaulted(scene).shapes} == {"large"}


def test_the_held_back_set_is_apart_from_training() -> None:
    held = held_back()
    assert (len(held.requests), len(held.edits), len(held.chat), len(held.outside)) == (150, 60, 30, 10)
    for part in (held.requests, held.edits):
        assert [e.language for e in part[:: len(part) // 3]] == ["en", "ja", "zh"]
    keys = {s.key for s in held_scenes()}
    trained = {e.scene.key for e in SAMPLE if e.scene is not None} | {e.parent.key for e in SAMPLE if e.parent}
    assert not keys & trained
    # Frames kept for the held-back set never reach training.
    texts = {e.text for e in SAMPLE}
    for tongue in (ENGLISH, JAPANESE, CHINESE):
        for line in (*tongue.outside.held, *(f for c in tongue.chat.values() for f in c.held)):
            assert line not in texts
        for frame in tongue.request.held:
            head = frame.split("{x}")[0]
            if len(head) >= 4:
                assert not any(t.startswith(head) for t in texts), frame
    assert not texts & {e.text for e in [*held.requests, *held.edits]}
    assert fingerprint(held.requests) == fingerprint(held_back().requests)  # seeded too


def _frame_lists(tongue: object) -> list[Frames]:
    lists = [v for v in vars(tongue).values() if isinstance(v, Frames)]
    return lists + [
        f for v in vars(tongue).values() if isinstance(v, dict) for f in v.values() if isinstance(f, Frames)
    ]


def test_every_lesson_is_the_shipped_adapters_data() -> None:
    # A later lesson's frames and mix must leave the earlier lessons' streams exactly as the adapter was taught
    # (their checkpoints resume only then).
    record = json.loads((Path("agent/adapters/world/training.json")).read_text(encoding="utf-8"))
    examples = list(training_examples(record["examples"], record["settings"]["seed"], FIRST))
    assert fingerprint(examples) == record["examples_sha256"]
    assert dict(Counter(e.kind for e in examples)) == record["kinds"]
    later = (("second", SECOND), ("third", THIRD), ("fourth", FOURTH), ("fifth", FIFTH), ("sixth", SIXTH))
    seeds = [record[name][f"{name}_seed"] for name, _ in later]
    assert len(record["lessons"]) == 5
    for lesson, seed, taught in zip((lesson for _, lesson in later), seeds, record["lessons"], strict=True):
        examples = list(training_examples(taught["examples"], seed, lesson))
        assert fingerprint(examples) == taught["examples_sha256"]
        assert dict(Counter(e.kind for e in examples)) == taught["kinds"]


def test_the_second_lesson_is_mostly_edits_in_more_words_and_never_the_held_ones() -> None:
    second = list(training_examples(2400, 28, SECOND))
    kinds = Counter(e.kind.split(":")[0] for e in second)
    assert kinds["edit"] / len(second) > 0.45 > kinds["request"] / len(second) > 0.25
    edits = Counter(e.kind for e in second if e.kind.startswith("edit:"))
    assert edits["edit:add"] > 1.3 * edits["edit:move"] and edits["edit:remove"] > 1.3 * edits["edit:reshape"]
    later = 0
    for tongue in (ENGLISH, JAPANESE, CHINESE):
        for frames in _frame_lists(tongue):
            assert not set(frames.later) & set(frames.held) and not set(frames.later) & set(frames.train)
            assert frames.pick(held=False, lesson=1) == frames.train
            assert frames.pick(held=True, lesson=2) == (frames.held or frames.train + frames.later)
            later += len(frames.later)
    assert later > 100
    # A later frame shows up in the second lesson's words: "背景は{b}にして" is one, with every colour noun.
    assert any(e.text.startswith("背景は") and e.kind == "edit:background" for e in second)
    assert not any(e.text.startswith("背景は") and e.kind == "edit:background" for e in SAMPLE)
    for example in second:
        assert parse_answer(render_answer(example.answer)) == example.answer


THIRD_SAMPLE = list(training_examples(2400, 29, THIRD))


_DEFAULT_WORDS = re.compile(
    r"background|\bon (white|black|gray|grey|red|green|blue|yellow|purple)\b"
    r"|\b(top|bottom|left|right|cent(er|re)|middle)\b|\b(large|big|huge)\b"
)


def _says_defaults(example: object) -> bool:
    """Whether English words name a place, a large size or a background."""
    return bool(_DEFAULT_WORDS.search(example.text.lower()))  # type: ignore[attr-defined]


def test_the_third_lesson_asks_short_requests_in_as_few_words_as_the_defaults_allow() -> None:
    short = [e for e in THIRD_SAMPLE if e.kind == "short"]
    assert 0.25 > len(short) / len(THIRD_SAMPLE) > 0.15
    assert sum(len(e.scene.shapes) == 1 for e in short) > len(short) / 2  # type: ignore[union-attr]
    for example in short:
        scene = example.scene
        assert isinstance(scene, Scene) and example.answer.caption == scene.caption()
        assert tuple(s.cell for s in scene.shapes) == DEFAULT_LAYOUT[len(scene.shapes)]
        if example.language == "en" and scene.background == DEFAULT_BACKGROUND and scene.shapes[0].size == "large":
            assert not _says_defaults(example), example.text
    texts = {e.text for e in short}
    assert any(
        re.fullmatch(r"draw (a|one) (red|green|blue|yellow|purple) (circle|disc|square|box|triangle)", t) for t in texts
    )
    assert any(re.fullmatch(r"\w{2,5}を描いて[。！]?", t) for t in texts) and any(t.startswith("画一个") for t in texts)
    # The near misses it must still decline stay in the mix, and the held-back scenes stay out of it.
    assert sum(e.kind == "outside" for e in THIRD_SAMPLE) > 150
    held = {s.key for s in held_scenes()}
    assert not held & {e.scene.key for e in THIRD_SAMPLE if e.scene is not None}
    assert not any(e.kind == "short" for e in SAMPLE)


def test_the_third_lesson_edits_an_earlier_picture_when_only_it_has_what_is_named() -> None:
    elsewhere = [e for e in THIRD_SAMPLE if e.how == "implicit" and e.answer.ref != LAST]
    implicit = [e for e in THIRD_SAMPLE if e.how == "implicit"]
    assert 0.35 > len(elsewhere) / len(implicit) > 0.1
    for example in elsewhere:
        _, colour, shape = example.answer.target.split()
        (mine,) = [p for p in example.pictures if p.id == example.answer.ref]
        assert mine is not example.pictures[-1] and mine.prompt == example.parent.caption()  # type: ignore[union-attr]
        for other in example.pictures:
            if other is not mine:
                objects = other.prompt.rsplit(", on a", 1)[0]  # a background of that colour names no object
                assert colour not in objects and shape not in objects, (example.text, other)
        assert example.kind.split(":")[1] not in ("add", "background")
    assert not any(e.how == "implicit" and e.answer.ref != LAST for e in SAMPLE)


def test_the_third_lesson_says_removals_as_a_wish_in_frames_no_other_split_has() -> None:
    third = 0
    for tongue in (ENGLISH, JAPANESE, CHINESE):
        for frames in _frame_lists(tongue):
            assert not set(frames.third) & {*frames.held, *frames.train, *frames.later}
            assert frames.pick(held=False, lesson=2) == frames.train + frames.later
            assert frames.pick(held=False, lesson=3) == frames.train + frames.later + frames.third
            third += len(frames.third)
    assert third == 13
    wishes = [e for e in THIRD_SAMPLE if e.kind == "edit:remove" and ("不需要了" in e.text or "isn't needed" in e.text)]
    assert wishes and all(len(e.scene.shapes) == len(e.parent.shapes) - 1 for e in wishes)  # type: ignore[union-attr]


def test_the_held_back_short_requests_are_held_scenes_with_every_default() -> None:
    held = held_back()
    keys = {s.key for s in held_scenes()}
    assert [e.language for e in held.short] == ["en"] * 10 + ["ja"] * 10 + ["zh"] * 10
    for example in held.short:
        assert example.kind == "short" and example.pictures == ()
        assert example.scene is not None and example.scene == defaulted(example.scene) and example.scene.key in keys
    assert not any(_says_defaults(e) for e in held.short if e.language == "en")
    assert held_back(short=0).requests == held.requests  # added last: the other sets did not move


FOURTH_SAMPLE = list(training_examples(1200, 30, FOURTH))


def test_the_fourth_lesson_asks_bare_one_object_requests_as_the_near_misses_are_typed() -> None:
    bare = [e for e in FOURTH_SAMPLE if e.kind == "bare"]
    assert len(bare) > 60 and {e.language for e in bare} == {"en", "ja", "zh"}
    plain = {
        "en": r"(draw |paint )?(a|one) (small |little |tiny )?(red|green|blue|yellow|purple) "
        r"(circle|disc|square|box|triangle)",
        "ja": r"(小さな|小さい|ちいさな)?\w{2,8}を描いて",
        "zh": r"画一个\w{2,8}",
    }
    for example in bare:
        scene = example.scene
        assert isinstance(scene, Scene) and len(scene.shapes) == 1 and scene.background == DEFAULT_BACKGROUND
        assert scene == defaulted(scene) or scene.shapes[0].size == "small"
        assert re.fullmatch(plain[example.language], example.text), example.text
        assert example.answer.caption == scene.caption() and example.answer.action == "draw"
    # The held-back scenes include most one-object default scenes ("draw a red circle" among them): taught the
    # others, the adapter must carry the form over.
    assert len({e.text for e in bare if re.fullmatch(r"(draw |paint )?a \w+ \w+", e.text)}) >= 5
    assert {e.text.split()[0] for e in bare if e.language == "en"} >= {"draw", "paint", "a", "one"}
    assert not any(e.kind == "bare" for e in (*SAMPLE, *THIRD_SAMPLE))
    held = {s.key for s in held_scenes()}
    assert not held & {e.scene.key for e in FOURTH_SAMPLE if e.scene is not None}


def test_the_fourth_lesson_talks_after_several_pictures() -> None:
    talk = [e for e in FOURTH_SAMPLE if e.kind in ("chat", "outside")]
    counts = Counter(len(e.pictures) for e in talk)
    assert sum(counts[n] for n in (2, 3, 4)) > len(talk) * 0.3 and counts[4] > 0
    assert all(e.answer.action == "reply" and not e.answer.ref for e in talk)
    outside = [e for e in talk if e.kind == "outside" and e.language == "en"]
    assert all(e.answer == Answer("reply", ENGLISH.outside_reply) for e in outside)
    assert {e.text for e in outside} <= set(ENGLISH.outside.train)  # typed as listed, as before
    earlier = Counter(len(e.pictures) for e in THIRD_SAMPLE if e.kind in ("chat", "outside"))
    assert set(earlier) == {0, 1}


def test_the_fourth_lesson_edits_an_earlier_picture_less_often_than_the_third() -> None:
    implicit = [e for e in FOURTH_SAMPLE if e.how == "implicit"]
    elsewhere = [e for e in implicit if e.answer.ref != LAST]
    assert 0.2 > len(elsewhere) / len(implicit) > 0.05


FIFTH_SAMPLE = list(training_examples(1200, 31, FIFTH))


def test_the_fifth_lesson_asks_and_talks_after_the_same_counts_of_pictures() -> None:
    # The fourth's bare requests came after none to two pictures and its out-of-world lines mostly after one
    # to four, so a few pictures had become the sign of a near miss ("draw a red circle" declined).
    def shares(examples: list[Example], kinds: tuple[str, ...]) -> list[float]:
        counts = Counter(len(e.pictures) for e in examples if e.kind in kinds)
        return [counts[n] / sum(counts.values()) for n in range(5)]

    for kinds in (("bare",), ("request", "short"), ("outside",), ("chat",)):
        share = shares(FIFTH_SAMPLE, kinds)
        assert 0.45 > share[0] > 0.2 and min(share[2:]) > 0.08, (kinds, share)  # 0.3 expected
    assert shares(FOURTH_SAMPLE, ("bare",))[3:] == [0.0, 0.0] and shares(FOURTH_SAMPLE, ("outside",))[4] > 0.1
    # Requests after pictures are requests: a new picture, never an edit of one.
    asked = [e for e in FIFTH_SAMPLE if e.kind in ("request", "short", "bare") and e.pictures]
    assert asked and all(e.answer.action == "draw" and not e.answer.ref for e in asked)
    kinds = Counter(e.kind for e in FIFTH_SAMPLE)
    assert kinds["bare"] > 80 and kinds["request"] > 1.5 * Counter(e.kind for e in FOURTH_SAMPLE)["request"]
    held = {s.key for s in held_scenes()}
    assert not held & {e.scene.key for e in FIFTH_SAMPLE if e.scene is not None}


SIXTH_SAMPLE = list(training_examples(1200, 32, SIXTH))
_SIZE_AFTER = re.compile(r"(circle|disc|square|box|triangle)( that is|[^,;]*,) (small|little|tiny|large|big|huge)\b")


def test_the_sixth_lesson_says_sizes_after_the_shape_and_asks_anew_where_a_background_edit_would_begin() -> None:
    # End to end the fifth lost sizes said after the shape (English) and kept an earlier picture's objects for
    # requests begun as a background edit is (Japanese). The sixth teaches neighbours of those phrasings, never
    # the held-back frames, and only from the sixth lesson on, so that earlier lessons' data stays as taught.
    sixth = 0
    for tongue in (ENGLISH, JAPANESE, CHINESE):
        for frames in _frame_lists(tongue):
            assert not set(frames.sixth) & {*frames.held, *frames.train, *frames.later, *frames.third}
            assert not set(frames.sixth) & set(frames.pick(held=False, lesson=5))
            assert set(frames.sixth) <= set(frames.pick(held=False, lesson=6))
            assert frames.pick(held=True, lesson=6) == (frames.held or frames.pick(held=False, lesson=6))
            sixth += len(frames.sixth)
    assert sixth == 8
    english = [e for e in SIXTH_SAMPLE if e.language == "en" and e.kind == "request"]
    said_after = [e for e in english if _SIZE_AFTER.search(e.text)]
    assert 0.6 > len(said_after) / len(english) > 0.25
    assert not any(_SIZE_AFTER.search(e.text) for e in FIFTH_SAMPLE if e.language == "en" and e.kind == "request")
    japanese = [e for e in SIXTH_SAMPLE if e.language == "ja" and e.kind == "request" and e.pictures]
    anew = [e for e in japanese if e.text.startswith(("背景は", "背景を"))]
    assert len(anew) > 15 and all(
        e.scene and e.answer == Answer("draw", e.answer.text, caption=e.scene.caption()) for e in anew
    )
    endings = ("の絵がほしい", "の絵をお願いします", "の絵を見たいです")
    assert sum(any(end in e.text for end in endings) for e in japanese) > 10
    assert not any(any(end in e.text for end in endings) for e in FIFTH_SAMPLE if e.kind == "request")

    # A few more edits than the fifth (more requests and fewer edits, tried first, cost edits end to end), and no
    # held-back scene.
    def edits(sample: list[Example]) -> int:
        return sum(e.kind.startswith("edit:") for e in sample)

    assert 0.44 > edits(SIXTH_SAMPLE) / len(SIXTH_SAMPLE) > 0.37 > edits(FIFTH_SAMPLE) / len(FIFTH_SAMPLE)
    held = {s.key for s in held_scenes()}
    assert not held & {e.scene.key for e in SIXTH_SAMPLE if e.scene is not None}


def test_the_held_back_bare_requests_come_after_none_to_four_pictures() -> None:
    sets = held_back(2, 1, 1, short=2, bare=10)
    assert [len(e.pictures) for e in sets.bare[:10]] == [0, 1, 2, 3, 4] * 2
    assert {e.language for e in sets.bare} == {"en", "ja", "zh"} and len(sets.bare) == 30
    for example in sets.bare:
        scene = example.scene
        assert scene is not None and scene == defaulted(scene) and len(scene.shapes) == 1
        assert scene.key in {s.key for s in held_scenes()}
        assert example.answer == Answer("draw", example.answer.text, caption=scene.caption())
    # Typed as a newcomer does, after three pictures: the first run's miss (docs/notes.md).
    assert (sets.bare[3].text, len(sets.bare[3].pictures)) == ("draw a red circle", 3)
    # Added last: every other set is what it was without it.
    without = held_back(2, 1, 1, short=2, bare=0)
    assert without.bare == [] and (without.requests, without.short) == (sets.requests, sets.short)
