"""What the shape world's adapter of SmolLM2 reads and writes, and the grammar that keeps it in the world.

The adapter (`agent/adapters/world`, trained by `python -m training.agent.train`) reads a short chat:

    system: egaku world
            #1 k3mf: a large red circle in the center, on a white background
    user:   make the circle blue

(the user's pictures as the agent's history note lists them, at most the last `MAX_PICTURES`, and the
one they replied to), and writes one of three answers, one field a line:

    draw                      edit last the red circle              reply
    <the canonical caption>   <the whole new canonical caption>     <a short answer in the user's language>
    <a short reply>           <a short reply>

The trainer renders its targets with `render_answer` and its inputs with `adapter_chat`, and the
runtime parses with `parse_answer`: one piece of code serves both, so what the model was taught is
exactly what it is shown. `AnswerGuide` is the safety net around decoding: it only says which
continuations stay inside the answer's grammar (the caption grammar of the world's vocabulary, shipped
next to the adapter as world.json, and for an edit the captions that change only what its head names);
the model's own scores choose among them.

Longer than most modules on purpose: the format, its parser and the grammar that guards it change
together, and the trainer and the runtime read them from this one place.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Literal

from agent.decision import REPLY, Decision

WORLD_SYSTEM = "egaku world"
MAX_PICTURES = 4  # the most recent pictures the adapter is shown (each costs ~25 tokens)
REPLIED = "reply"
LAST = "last"
BACKGROUND_TARGET = "the background"
MAX_OBJECTS = 3

# The agent's history note (agent.seeing.history_note, tools.stores.history.Generation.line).
_NOTE_LINE = re.compile(r"^#(\d+) id=(\S+) \([^)]*\): (.*?)(?:; it shows: .*)?$")
_NOTE_REPLY = re.compile(
    r"^The user replied to the message showing this image \(ref 'reply'\): "
    r"id=(\S+) \([^)]*\): (.*?)(?:; it shows: .*)?$"
)


@dataclass(frozen=True)
class PictureLine:
    """One of the user's pictures as the adapter sees it: '#3' (its ordinal) or 'reply', its id and prompt."""

    label: str
    id: str
    prompt: str

    def line(self) -> str:
        """Its line in the adapter's system message."""
        return f"{self.label} {self.id}: {self.prompt}"


def pictures_in(note: str, limit: int = MAX_PICTURES) -> list[PictureLine]:
    """The pictures a history note lists: the last `limit` of the user's, then the one replied to."""
    mine: list[PictureLine] = []
    replied: list[PictureLine] = []
    for line in note.splitlines():
        if found := _NOTE_LINE.match(line):
            mine.append(PictureLine(f"#{found[1]}", found[2], found[3]))
        elif found := _NOTE_REPLY.match(line):
            replied.append(PictureLine(REPLIED, found[1], found[2]))
    return [*mine[-limit:], *replied[:1]]


def adapter_chat(pictures: list[PictureLine], text: str) -> list[dict[str, str]]:
    """The chat messages the adapter reads (before the chat template)."""
    system = "\n".join([WORLD_SYSTEM, *(p.line() for p in pictures)])
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


Action = Literal["draw", "edit", "reply"]


@dataclass(frozen=True)
class Answer:
    """What the adapter writes, as data."""

    action: Action
    text: str  # the reply (draw, edit: posted with the picture)
    caption: str = ""  # draw, edit
    ref: str = ""  # edit: "last", "reply" or an id
    target: str = ""  # edit: "the red circle", "the background"

    def decision(self) -> Decision:
        """The agent's Decision: a world edit is always a region edit (the worker's world masker finds it)."""
        if self.action == "draw":
            return Decision.model_validate({"action": "draw", "prompt": self.caption, "reply": self.text})
        if self.action == "edit":
            return Decision.model_validate(
                {"action": "edit", "ref": self.ref, "prompt": self.caption, "mode": "region", "target": self.target,
                 "reply": self.text}
            )  # fmt: skip
        return Decision(action=REPLY, text=self.text)


def render_answer(answer: Answer) -> str:
    """The answer as the adapter writes it (the trainer's target)."""
    if answer.action == "draw":
        return f"draw\n{answer.caption}\n{answer.text}"
    if answer.action == "edit":
        return f"edit {answer.ref} {answer.target}\n{answer.caption}\n{answer.text}"
    return f"reply\n{answer.text}"


def parse_answer(raw: str) -> Answer | None:
    """The answer in the adapter's output, or None when it is not one."""
    lines = [line.strip() for line in raw.strip().split("\n")]
    head = lines[0].split(" ", 2) if lines else []
    if head == ["reply"] and len(lines) == 2 and lines[1]:
        return Answer("reply", lines[1])
    if len(lines) != 3 or not lines[1] or not lines[2]:
        return None
    if head == ["draw"]:
        return Answer("draw", lines[2], caption=lines[1])
    if len(head) == 3 and head[0] == "edit":
        return Answer("edit", lines[2], caption=lines[1], ref=head[1], target=head[2])
    return None


@dataclass(frozen=True)
class Thing:
    """One canonical object phrase, with what no other object of its scene may share."""

    phrase: str
    colour: str
    place: str
    shape: str


@dataclass(frozen=True)
class Vocabulary:
    """The world's closed vocabulary, canonical words only (written by the trainer from training/world/scenes.py)."""

    colours: tuple[str, ...]  # of objects
    backgrounds: tuple[str, ...]
    shapes: tuple[str, ...]
    sizes: tuple[str, ...]
    positions: tuple[str, ...]  # "at the top left", ... one canonical phrase per cell

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read world.json."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: tuple(data[k]) for k in ("colours", "backgrounds", "shapes", "sizes", "positions")})

    def as_json(self) -> str:
        """world.json's text."""
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, indent=1) + "\n"

    @cached_property
    def objects(self) -> tuple[Thing, ...]:
        """Every canonical object phrase: 'a large red circle in the center'."""
        return tuple(
            Thing(f"a {size} {colour} {shape} {where}", colour, where, shape)
            for size in self.sizes
            for colour in self.colours
            for shape in self.shapes
            for where in self.positions
        )

    @cached_property
    def by_phrase(self) -> dict[str, Thing]:
        """Each object phrase's Thing."""
        return {t.phrase: t for t in self.objects}

    @cached_property
    def targets(self) -> tuple[str, ...]:
        """What an edit may name as its target."""
        return (BACKGROUND_TARGET, *(f"the {c} {s}" for c in self.colours for s in self.shapes))


def caption_fits(vocabulary: Vocabulary, text: str, complete: bool) -> bool:
    """Whether text is (the start of) a canonical caption of a scene of the world.

    One to three objects joined as training.world.scenes joins them ('A', 'A and B', 'A, B and C'),
    then the background; as in every scene of the world, no two objects share a colour or a place,
    and the background is none of their colours.
    """
    return _objects(vocabulary, text, "first", frozenset(), frozenset(), complete)


def _objects(
    world: Vocabulary, text: str, state: str, colours: frozenset[str], places: frozenset[str], done: bool
) -> bool:
    """An object phrase starts text (state: which object of the caption it is: first, middle or last)."""
    for thing in world.objects:
        if thing.colour in colours or thing.place in places:
            continue
        if text.startswith(thing.phrase):
            rest = text[len(thing.phrase) :]
            if _after(world, rest, state, colours | {thing.colour}, places | {thing.place}, done):
                return True
        elif not done and thing.phrase.startswith(text):
            return True
    return False


def _after(
    world: Vocabulary, text: str, state: str, colours: frozenset[str], places: frozenset[str], done: bool
) -> bool:
    """What may follow an object: another object, or (not after the middle one) the background."""
    joins = {"first": ((", ", "middle"), (" and ", "last")), "middle": ((" and ", "last"),), "last": ()}[state]
    for join, following in joins:
        if text.startswith(join):
            if _objects(world, text[len(join) :], following, colours, places, done):
                return True
        elif not done and join.startswith(text):
            return True
    if state == "middle":
        return False
    for background in world.backgrounds:
        if background in colours:
            continue
        tail = f", on a {background} background"
        if text == tail or (not done and tail.startswith(text)):
            return True
    return False


@dataclass(frozen=True)
class Layout:
    """A canonical caption as data: its objects in the caption's order, and the background."""

    things: tuple[Thing, ...]
    background: str

    def caption(self) -> str:
        """The canonical caption (objects joined as training.world.scenes joins them)."""
        phrases = [t.phrase for t in self.things]
        joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        return f"{joined}, on a {self.background} background"


def read_caption(vocabulary: Vocabulary, text: str) -> Layout | None:
    """The layout of a whole canonical caption; None for any other text (an upload's caption, say)."""
    if not caption_fits(vocabulary, text, complete=True):
        return None
    body, _, tail = text.rpartition(", on a ")
    things: list[Thing] = []
    for part in re.split(r", | and ", body):
        thing = vocabulary.by_phrase.get(part)
        if thing is None:
            return None
        things.append(thing)
    return Layout(tuple(things), tail.removesuffix(" background"))


def edits_of(vocabulary: Vocabulary, source: Layout, target: str) -> tuple[str, ...]:
    """Every caption an edit of `source` aimed at `target` may write, sorted.

    The edit touches only what its head names: the background alone changes for "the background"; an
    object of the scene, named by its colour and shape as it is now, is changed in any way or removed,
    the others kept as they are and where they are in the caption; a colour the scene lacks is an object
    added at the caption's end. A colour the scene has, with another shape, names nothing: no captions
    (the model had written "the red square" for a red triangle, then changed the triangle). The scene's
    own caption is never one of them.
    """
    things = source.things
    if target == BACKGROUND_TARGET:
        used = {t.colour for t in things}
        layouts = [Layout(things, b) for b in vocabulary.backgrounds if b not in used and b != source.background]
    else:
        _, colour, shape = target.split(" ", 2)
        at = next((i for i, t in enumerate(things) if (t.colour, t.shape) == (colour, shape)), None)
        others = things if at is None else things[:at] + things[at + 1 :]
        taken = {t.colour for t in others} | {source.background}
        places = {t.place for t in others}
        fits = [t for t in vocabulary.objects if t.colour not in taken and t.place not in places]
        if at is None:  # an object added: the one named, at the end
            added = [t for t in fits if t.colour == colour and t.shape == shape]
            layouts = [Layout((*things, t), source.background) for t in added] if len(things) < MAX_OBJECTS else []
        else:
            layouts = [Layout((*things[:at], t, *things[at + 1 :]), source.background) for t in fits]
            layouts += [Layout(others, source.background)] if others else []
    own = source.caption()
    return tuple(sorted({layout.caption() for layout in layouts} - {own}))


def _has_prefix(captions: tuple[str, ...], text: str, whole: bool = False) -> bool:
    """Whether a sorted tuple holds text (`whole`) or a caption that starts with it."""
    at = bisect_left(captions, text)
    return at < len(captions) and (captions[at] == text if whole else captions[at].startswith(text))


class AnswerGuide:
    """Which continuations of an answer stay inside its grammar (the model picks among them).

    An edit of a picture whose caption the guide can read (`read_caption`) must be one of `edits_of`
    it: a change of what the edit's head names and of nothing else, never the old caption. End to end
    the adapter had copied the old caption back (4 of 60 held-back edits), and more often changed a
    second thing besides the one it named, or another thing instead (the background for "丸を縮めて"
    after naming the yellow circle). The head (which picture, what in it) and the new caption within
    those bounds stay the model's choice; for a picture the guide cannot read, only the caption grammar
    holds and the old caption is ruled out.
    """

    def __init__(self, vocabulary: Vocabulary, pictures: Sequence[PictureLine]) -> None:
        self.vocabulary = vocabulary
        refs = (LAST, REPLIED, *(p.id for p in pictures))
        self._heads = ("draw", "reply", *(f"edit {r} {t}" for r in refs for t in vocabulary.targets))
        # What each ref edits, as the history resolves it: "last" the user's latest, "reply" the one replied to.
        mine = [p for p in pictures if p.label != REPLIED]
        replied = [p for p in pictures if p.label == REPLIED]
        self._sources = {p.id: p.prompt for p in pictures}
        self._sources |= {LAST: mine[-1].prompt} if mine else {}
        self._sources |= {REPLIED: replied[0].prompt} if replied else {}
        self._alphabet = sorted(
            {c for t in vocabulary.objects for c in t.phrase} | set(", ") | set("".join(vocabulary.backgrounds))
        )
        self._leaves: dict[tuple[str, int], bool] = {}
        self._edits: dict[str, tuple[str, ...] | None] = {}

    def viable(self, text: str) -> bool:
        """Whether text can still grow into a complete answer."""
        return self._check(text, complete=False)

    def complete(self, text: str) -> bool:
        """Whether text is a whole answer."""
        return self._check(text, complete=True)

    def _check(self, text: str, complete: bool) -> bool:
        lines = text.split("\n")
        head = lines[0]
        if len(lines) == 1:
            return not complete and any(h.startswith(head) and self._possible(h) for h in self._heads)
        if head not in self._heads or not self._possible(head):
            return False
        if head == "reply":
            # One line of free text; it must say something.
            return len(lines) == 2 and (not complete or bool(lines[1].strip()))
        edits = self.options(head)
        if edits is not None:
            if len(lines) == 2:
                return not complete and _has_prefix(edits, lines[1])
            return (
                len(lines) == 3
                and _has_prefix(edits, lines[1], whole=True)
                and (not complete or bool(lines[2].strip()))
            )
        source = self._sources.get(head.split(" ", 2)[1], "") if head.startswith("edit ") else ""
        if len(lines) == 2:
            return (
                not complete
                and caption_fits(self.vocabulary, lines[1], complete=False)
                and self._can_leave(source, lines[1])
            )
        return (
            len(lines) == 3
            and caption_fits(self.vocabulary, lines[1], complete=True)
            and lines[1] != source
            and (not complete or bool(lines[2].strip()))
        )

    def heads(self, start: str) -> tuple[str, ...] | None:
        """Once the answer is "edit", every edit head that can be followed by a caption: the runtime weighs
        them whole, each with its best caption (agent.smol `HEAD_CHOICES`); None for any other start."""
        if start != "edit":
            return None
        return tuple(h for h in self._heads if h.startswith("edit ") and self._possible(h))

    def _possible(self, head: str) -> bool:
        """Whether a head can be followed by a caption at all (an object added to a full scene cannot)."""
        return self.options(head) != ()

    def options(self, head: str) -> tuple[str, ...] | None:
        """The captions an edit head allows, sorted; None when it is no edit of a picture the guide can read.

        Few enough (at most a few hundred) that the runtime weighs them whole rather than letter by letter.
        """
        if not head.startswith("edit "):
            return None
        if head not in self._edits:
            _, ref, target = head.split(" ", 2)
            source = read_caption(self.vocabulary, self._sources.get(ref, ""))
            self._edits[head] = None if source is None else edits_of(self.vocabulary, source, target)
        return self._edits[head]

    def _can_leave(self, source: str, prefix: str) -> bool:
        """Whether a caption begun with `prefix` can still end as another caption than `source`."""
        if not source or not source.startswith(prefix):  # a drawing, or an edit of a picture the guide was not shown
            return True
        key = (source, len(prefix))
        if key not in self._leaves:
            # Somewhere from here on, a character other than the source's keeps the caption in the world.
            self._leaves[key] = any(
                caption_fits(self.vocabulary, source[:at] + c, complete=False)
                for at in range(len(prefix), len(source))
                for c in self._alphabet
                if c != source[at]
            )
        return self._leaves[key]
