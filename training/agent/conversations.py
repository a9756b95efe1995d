"""Synthetic conversations with the shape world's agent, generated from the world's vocabulary.

Each `Example` is one turn as the embedded agent meets it: the user's recent pictures (as the
agent's history note lists them), the user's words in English, Japanese or Chinese, and the answer
the adapter should write (`agent.worldtalk`). Kinds: requests (one to three objects, with the
world's defaults where words are left out), edits of an earlier picture (recolour, reshape, move,
resize, add, remove, background) referred to implicitly, as the last one, by ordinal, by id or by
replying, chat lines, and requests the world cannot draw.

The held-back set (`held_back`) is generated with another seed, from the world's held-back scenes
(and default-only variants of them), with sentence frames the training never uses; training skips
every scene key the held-back set uses.

Long on purpose: every kind of turn draws from one seeded random stream in one fixed order, and the
held-back set must skip what training uses; kept together, a change of one kind cannot silently
shift the others' data (the data's fingerprint in training.json would tell, but only after a run).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from agent.worldtalk import (
    BACKGROUND_TARGET,
    LAST,
    MAX_PICTURES,
    REPLIED,
    Answer,
    PictureLine,
    Vocabulary,
    adapter_chat,
    render_answer,
)
from training.agent.lexicon import TONGUES, Cell, Frames, Tongue
from training.world.scenes import (
    BACKGROUNDS,
    OBJECT_COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    Shape,
    held_out_scenes,
    sample_scene,
)

TRAIN_SEED = 27
HELD_SEED = 2727
LANGUAGES = ("en", "ja", "zh")
EDITS = ("recolour", "reshape", "move", "resize", "add", "remove", "background")
NAMED = ("recolour", "reshape", "move", "resize", "remove")  # the edits that name an object already there
# What a request that leaves words out means: the world's defaults (README "What the built-in model draws").
DEFAULT_BACKGROUND = "white"
DEFAULT_SIZE = "large"
DEFAULT_LAYOUT: dict[int, tuple[Cell, ...]] = {1: ((1, 1),), 2: ((1, 0), (1, 2)), 3: ((1, 0), (1, 1), (1, 2))}
_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # tools.stores.history's id alphabet
REPLYING = "(replying to your message) "  # what agent.service puts before the words of a reply


def vocabulary() -> Vocabulary:
    """The world's canonical words, as the adapter's grammar reads them (world.json)."""
    cells = sorted(POSITIONS)
    return Vocabulary(OBJECT_COLOURS, BACKGROUNDS, SHAPES, SIZES, tuple(POSITIONS[c][0] for c in cells))


@dataclass(frozen=True)
class Example:
    """One turn: what the adapter is shown, and what it should write."""

    kind: str  # "request", "short", "bare", "edit:<kind>", "chat", "outside"
    language: str
    pictures: tuple[PictureLine, ...]
    text: str
    answer: Answer
    scene: Scene | None = None  # requests and edits: the scene the answer's caption describes
    parent: Scene | None = None  # edits: the picture changed
    said: str = ""  # edits: the change in words, before the words that say which picture
    how: str = ""  # edits: how the picture is named: implicit, last, ordinal, id or reply

    def messages(self) -> list[dict[str, str]]:
        """The whole chat, the answer included (what the trainer tokenises)."""
        chat = adapter_chat(list(self.pictures), self.text)
        return [*chat, {"role": "assistant", "content": render_answer(self.answer)}]


def defaulted(scene: Scene) -> Scene:
    """The scene with every attribute a request may leave out set to the world's default."""
    cells = DEFAULT_LAYOUT[len(scene.shapes)]
    shapes = tuple(
        replace(s, size=DEFAULT_SIZE, cell=c, jitter=(0, 0)) for s, c in zip(scene.shapes, cells, strict=True)
    )
    return Scene(background=DEFAULT_BACKGROUND, shapes=shapes)


def held_scenes(count: int = 100) -> list[Scene]:
    """The held-back scenes: the world's own, then default-only variants of some of them."""
    base = held_out_scenes(count)
    return [*base, *(defaulted(s) for s in base[: count // 4])]


class Writer:
    """Writes examples in one language, for one split (training or held-back)."""

    def __init__(self, tongue: Tongue, rng: random.Random, held: bool, lesson: int = 1) -> None:
        self.t = tongue
        self.rng = rng
        self.held = held
        self.lesson = lesson

    def _choice(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def _frame(self, frames: Frames) -> str:
        return self.rng.choice(frames.pick(self.held, self.lesson))

    def _space(self, text: str) -> str:
        return " ".join(text.split()) if self.t.code == "en" else text.replace(" ", "")

    # -- scenes in words ----------------------------------------------------
    def thing(self, shape: Shape, say_size: bool, say_place: bool) -> str:
        """One object as a user names it."""
        size = self._choice(self.t.sizes[shape.size]) if say_size else ""
        pos = self._choice(self.t.at[shape.cell]) if say_place else ""
        frames = self.t.obj if say_place else self.t.obj_bare
        for attempt in range(20):
            if attempt == 10:  # the held-back frames may all need a size: fall back to the flexible ones
                frames = self.t.obj_bare if not say_place else Frames(self.t.obj.train, ())
            text = self._space(
                self._frame(frames).format(
                    size=size,
                    colour=self._choice(self.t.colours[shape.colour]),
                    shape=self._choice(self.t.shapes[shape.shape]),
                    pos=pos,
                )
            ).strip(" ,")
            if ", ," not in text and " ," not in text and not text.startswith(("a ,", "a,")):
                return text
        raise ValueError(f"no frame fits {shape}")

    def things(self, shapes: tuple[Shape, ...], say_size: bool, say_place: bool) -> str:
        """Several objects, joined."""
        parts = [self.thing(s, say_size or s.size != DEFAULT_SIZE, say_place) for s in shapes]
        if len(parts) == 1:
            return parts[0]
        joined = parts[0]
        for part in parts[1:-1]:
            joined += self._choice(self.t.joins) + part
        return joined + self._choice(self.t.last_joins) + parts[-1]

    def request_text(self, scene: Scene, short: bool = False) -> str:
        """A request for the scene, leaving out what the defaults give: sometimes, or (`short`) always."""
        cells = tuple(s.cell for s in scene.shapes)
        if short:
            say_place = cells != DEFAULT_LAYOUT[len(cells)]
            say_size = any(s.size != DEFAULT_SIZE for s in scene.shapes)
            say_bg = scene.background != DEFAULT_BACKGROUND
        else:
            say_place = cells != DEFAULT_LAYOUT[len(cells)] or self.rng.random() < 0.4
            say_size = self.rng.random() < 0.5 or any(s.size != DEFAULT_SIZE for s in scene.shapes)
            say_bg = scene.background != DEFAULT_BACKGROUND or self.rng.random() < 0.5
        objects = self.things(scene.shapes, say_size, say_place)
        frame = self._frame(self.t.request)
        if not say_bg:
            return self._noise(frame.format(x=objects))
        bg = self._choice(self.t.colour_nouns[scene.background])
        with_bg = self._frame(self.t.with_bg)
        if "{x}" in with_bg:
            return self._noise(frame.format(x=with_bg.format(x=objects, b=bg)))
        return self._noise(with_bg.format(t=frame.format(x=objects).rstrip(".!?。！？"), b=bg))

    def bare_text(self, scene: Scene) -> str:
        """One object in the plainest frame, nothing added ("draw a red circle", "赤い丸を描いて", "画一个红色的圆"):
        the form of the out-of-world lines it must be told from ("draw a pink square")."""
        (shape,) = scene.shapes
        return self._space(self._choice(self.t.bare).format(x=self.thing(shape, shape.size != DEFAULT_SIZE, False)))

    def _noise(self, text: str) -> str:
        """Casual typing: a capital or not, a final mark or not (English)."""
        if self.t.code != "en":
            return text + (self._choice(("", "", "。", "！")) if text[-1] not in "？。！?" else "")
        roll = self.rng.random()
        if roll < 0.25:
            text = text[0].upper() + text[1:]
        elif roll < 0.35:
            text = text.lower()
        if text[-1] not in ".!?" and self.rng.random() < 0.3:
            text += self._choice(("!", ".", " please"))
        return text

    # -- turns -----------------------------------------------------------------
    def request(
        self, scene: Scene, pictures: tuple[PictureLine, ...], short: bool = False, bare: bool = False
    ) -> Example:
        """A new picture asked for (`short`: in as few words as the defaults allow; `bare`: one object on
        the default background, said in the plainest frame as typed, "draw a red circle")."""
        answer = Answer("draw", self.t.drawn, caption=scene.caption())
        text = self.bare_text(scene) if bare else self.request_text(scene, short)
        kind = "bare" if bare else "short" if short else "request"
        return Example(kind, self.t.code, pictures, text, answer, scene=scene)

    def edit(
        self, kind: str, parent: Scene, pictures: tuple[PictureLine, ...], ref: str, how: str, explicit: bool = False
    ) -> Example:
        """A change to the parent picture (ref: what the answer names; how: how the user refers to it;
        explicit: the object is named, never "it", as it must be when it picks the picture)."""
        child, target, sentence = self._change(kind, parent, explicit)
        number = next((int(p.label[1:]) for p in pictures if p.id == ref and p.label != REPLIED), 0)
        text = self.refer(sentence, how, ref, number)
        answer = Answer("edit", self.t.edited, caption=child.caption(), ref=ref, target=target)
        return Example(
            f"edit:{kind}", self.t.code, pictures, text, answer, scene=child, parent=parent, said=sentence, how=how
        )

    def _name(self, shape: Shape, scene: Scene, explicit: bool = False) -> str:
        """How the user points at one object of the scene, unambiguously (`explicit`: never "it")."""
        colour = self._choice(
            self.t.colour_nouns[shape.colour] if self.t.code != "en" else self.t.colours[shape.colour]
        )
        form = self.rng.random()
        if len(scene.shapes) == 1 and form < 0.15 and not explicit:
            return self._choice(self.t.it)
        unique = sum(s.shape == shape.shape for s in scene.shapes) == 1
        if unique and form < 0.5:
            return self._choice(self.t.the_shape).format(s=self._choice(self.t.shapes[shape.shape]))
        if form < 0.85:
            # Japanese colours before a shape are adjectives ("赤い丸"); Chinese and English take the plain word.
            said = self._choice(self.t.colours[shape.colour]) if self.t.code == "ja" else colour
            return self._choice(self.t.the_colour_shape).format(c=said, s=self._choice(self.t.shapes[shape.shape]))
        return self._choice(self.t.the_colour).format(c=colour)

    def _change(self, kind: str, scene: Scene, explicit: bool = False) -> tuple[Scene, str, str]:
        """The changed scene, the edit's target, and the user's sentence."""
        shapes = list(scene.shapes)
        used = {s.colour for s in shapes}
        i = self.rng.randrange(len(shapes))
        old = shapes[i]
        target = f"the {old.colour} {old.shape}"
        name = self._name(old, scene, explicit)
        if kind == "recolour":
            colour = self.rng.choice([c for c in OBJECT_COLOURS if c not in used and c != scene.background])
            shapes[i] = replace(old, colour=colour)
            said = self._frame(self.t.recolour).format(o=name, c=self._choice(self.t.colour_nouns[colour]))
        elif kind == "reshape":
            shape = self.rng.choice([s for s in SHAPES if s != old.shape])
            shapes[i] = replace(old, shape=shape)
            said = self._frame(self.t.reshape).format(o=name, s=self._choice(self.t.shapes[shape]))
        elif kind == "move":
            cell = self.rng.choice([c for c in POSITIONS if c not in {s.cell for s in shapes}])
            shapes[i] = replace(old, cell=cell)
            said = self._frame(self.t.move).format(o=name, p=self._choice(self.t.to[cell]))
        elif kind == "resize":
            grow = old.size == "small"
            shapes[i] = replace(old, size="large" if grow else "small")
            said = self._frame(self.t.grow if grow else self.t.shrink).format(o=name)
        elif kind == "add":
            colour = self.rng.choice([c for c in OBJECT_COLOURS if c not in used and c != scene.background])
            cell = self.rng.choice([c for c in POSITIONS if c not in {s.cell for s in shapes}])
            new = Shape(self.rng.choice(SHAPES), colour, self.rng.choice(("small", "large")), cell)
            shapes.append(new)
            target = f"the {new.colour} {new.shape}"
            frame = self._frame(self.t.add)
            say_size = new.size != DEFAULT_SIZE or self.rng.random() < 0.6
            said = frame.format(n=self.thing(new, say_size, True))
        elif kind == "remove":
            del shapes[i]
            said = self._frame(self.t.remove).format(o=name)
        else:
            free = [c for c in ("white", "gray", "black", *OBJECT_COLOURS) if c not in used and c != scene.background]
            background = self.rng.choice(free)
            target = BACKGROUND_TARGET
            said = self._frame(self.t.background).format(b=self._choice(self.t.colour_nouns[background]))
            return Scene(background, tuple(shapes)), target, said
        return Scene(scene.background, tuple(shapes)), target, said

    def refer(self, sentence: str, how: str, ref: str, number: int) -> str:
        """The edit sentence with the words that say which picture (its id `ref`, its ordinal `number`)."""
        if how == "implicit":
            return self._noise(sentence)
        if how == "reply":
            return REPLYING + self._noise(sentence)
        if how == "last":
            return self._noise(self._frame(self.t.last_ref).format(e=sentence))
        if how == "id":
            return self._noise(self._frame(self.t.id_ref).format(i=ref, e=sentence))
        return self._noise(self._frame(self.t.ordinal_ref).format(k=self.t.ordinals[number - 1], e=sentence))

    def chat(self, category: str, pictures: tuple[PictureLine, ...]) -> Example:
        """A chat line and its reply."""
        text = self._frame(self.t.chat[category])
        return Example("chat", self.t.code, pictures, text, Answer("reply", self.t.chat_reply[category]))

    def outside(self, pictures: tuple[PictureLine, ...]) -> Example:
        """A request the world cannot draw, and the polite explanation."""
        text = self._frame(self.t.outside)
        return Example("outside", self.t.code, pictures, text, Answer("reply", self.t.outside_reply))


@dataclass(frozen=True)
class Lesson:
    """One lesson's stream: the kinds' shares, the edits' weights (None: all alike) and its frames."""

    number: int
    mix: dict[str, float]
    edit_weights: dict[str, float] | None = None
    short: float = 0.0  # the share of requests asked in as few words as the defaults allow
    elsewhere: float = 0.0  # the share of implicit edits naming an object only an earlier picture has
    bare: float = 0.0  # the share of one-object short requests said in the plainest frame ("draw a red circle")
    busy: float = 0.0  # the share of chat and out-of-world lines that come after one to four pictures
    asked_after: float = 0.0  # the share of requests that come after one to four pictures (0: none to two, as before)


FIRST = Lesson(1, {"request": 0.48, "edit": 0.34, "chat": 0.09, "outside": 0.09})
# The first lesson left edits the weakest (adds and removes worst: the new object left out of the
# caption, the old one kept), so the second is mostly edits, those two most, with requests enough
# to keep what they learned.
SECOND = Lesson(
    2,
    {"request": 0.3, "edit": 0.52, "chat": 0.09, "outside": 0.09},
    {"add": 2.0, "remove": 2.0, "background": 1.5, "recolour": 1.2, "reshape": 1.0, "move": 1.0, "resize": 1.0},
)

# The second left short requests ("draw a red circle", a newcomer's first words) read as out of the
# world, beside the near misses it must decline ("draw an orange circle"), and an implicit edit always
# aimed at the last picture, even when only an earlier one has what it names. The third asks half its
# requests short and a third of its implicit edits of an earlier picture, and teaches removals said
# as a wish; the rest as the second, so that it keeps what that taught. (Tried and not shipped, in
# docs/notes.md: teaching the held-back one-object default scenes, casual typing for out-of-world
# lines, and 60% of implicit edits elsewhere, which then took edits of the last picture elsewhere too.)
THIRD = Lesson(
    3,
    {"request": 0.4, "edit": 0.42, "chat": 0.09, "outside": 0.09},
    {"add": 2.0, "remove": 2.5, "background": 1.2, "recolour": 1.2, "reshape": 1.0, "move": 1.0, "resize": 1.0},
    short=0.5,
    elsewhere=0.35,
)

# The third, after many pictures, took thanks and goodbyes for edits of the last picture (its chat and
# out-of-world lines came after at most one), and still declined the bare "draw a red circle" (the
# out-of-world near misses it must be told from are all typed that way: "draw a pink square"). The
# fourth, short, goes on from it: chat and out-of-world lines after up to four pictures, one-object
# requests said bare, and fewer implicit edits of an earlier picture than the third's 35%, which had
# begun to take edits from the last picture. (Tried first and not kept, docs/notes.md: the same with
# the out-of-world lines typed as casually as requests, which fixed the chat but made the model
# decline "paint a red circle" too.)
FOURTH = Lesson(
    4,
    {"request": 0.32, "edit": 0.38, "chat": 0.16, "outside": 0.14},
    THIRD.edit_weights,
    short=0.6,
    elsewhere=0.2,
    bare=1.0,
    busy=0.7,
)

# The fourth declined the bare "draw a red circle" again once the user had a few pictures: its bare
# requests came after none to two, its out-of-world lines mostly after one to four, so the count of
# pictures had become the sign of a near miss. The fifth, as short, goes on from the fourth's adapter
# as written: requests, chat and out-of-world lines all come after the same counts of pictures (none,
# or one to four), so the count tells nothing; full requests at the third's share (the fourth's fewer
# had cost some); the rest as the fourth. (Tried too and not kept, docs/notes.md: the same, also
# teaching the fifteen one-object default scenes the held-back set keeps, at 3e-4: more bare lines
# drawn, but thanks after four pictures taken for an edit.)
FIFTH = Lesson(
    5,
    {"request": 0.42, "edit": 0.36, "chat": 0.12, "outside": 0.1},
    THIRD.edit_weights,
    short=0.5,
    elsewhere=0.25,
    bare=1.0,
    busy=0.6,
    asked_after=0.6,
)

# End to end, the fifth lost a size said after the shape ("a blue disc, tiny, bottom left") in English and, in
# Japanese, took a request after pictures that starts as a background edit does ("背景を白にして…") or ends
# "…の絵をください" for an edit, keeping the old objects (docs/notes.md). The sixth, as short, goes on from the
# fifth's adapter as written: frames that are those phrasings' neighbours, never the held-back ones
# (lexicon.py `sixth`) and a few more edits; the rest as the fifth. Its cost: the bare English "draw a <colour>
# circle" after pictures is declined again ("please draw …" draws). (Tried and not kept, docs/notes.md: half the
# turns requests, fewer short: edits 80 -> 65% end to end; requests 46%, edits 38%, more after pictures: the bare
# lines back, but chat 28 of 30 and every other figure lower.)
SIXTH = replace(FIFTH, number=6, mix={"request": 0.42, "edit": 0.4, "chat": 0.1, "outside": 0.08})


class Generator:
    """A seeded stream of examples."""

    def __init__(self, seed: int, held: bool, scenes: list[Scene] | None = None, lesson: Lesson = FIRST) -> None:
        self.rng = random.Random(seed)
        self.held = held
        self.lesson = lesson
        self.scenes = scenes  # the held-back set draws from these; training samples new ones
        self.exclude = {s.key for s in held_scenes()} if not held else set()

    def scene(self) -> Scene:
        """A scene to ask for or to edit."""
        if self.scenes is not None:
            return self.rng.choice(self.scenes)
        while True:
            scene = sample_scene(self.rng)
            if self.rng.random() < 0.25:
                scene = defaulted(scene) if self.rng.random() < 0.5 else replace(scene, background=DEFAULT_BACKGROUND)
            if scene.key not in self.exclude:
                return scene

    def new_id(self) -> str:
        """An image id like the history's."""
        return "".join(self.rng.choice(_ID_ALPHABET) for _ in range(4))

    def pictures(self, count: int, start: int, include: Scene | None = None) -> tuple[PictureLine, ...]:
        """`count` of the user's pictures numbered from `start`, one of them `include`'s (if given)."""
        scenes = [self.scene() for _ in range(count)]
        if include is not None:
            scenes[self.rng.randrange(count)] = include
        return tuple(PictureLine(f"#{start + n}", self.new_id(), s.caption()) for n, s in enumerate(scenes))

    def writer(self, language: str) -> Writer:
        """A writer for one language."""
        return Writer(TONGUES[language], self.rng, self.held, self.lesson.number)

    def request(self, language: str) -> Example:
        """A request, after none to two earlier pictures, or (`asked_after`) as many as a chat line comes after."""
        asked_after = self.lesson.asked_after
        count = self._after(asked_after) if asked_after > 0 else self.rng.choice((0, 0, 0, 1, 2))
        scene = self.scene()
        short = self.lesson.short > 0 and self.rng.random() < self.lesson.short
        if short:
            scene = self.short_scene()
        bare = (
            short and self.lesson.bare > 0 and len(scene.shapes) == 1 and scene.background == DEFAULT_BACKGROUND
            and self.rng.random() < self.lesson.bare
        )  # fmt: skip
        return self.writer(language).request(scene, self.pictures(count, self.rng.randint(1, 6)), short, bare)

    def short_scene(self) -> Scene:
        """A scene a short request asks for: the default places, and mostly the default size and background;
        more often one object than other requests (a newcomer's "draw a red circle")."""
        while True:
            scene = defaulted(self.scene())
            if len(scene.shapes) > 1 and self.rng.random() < 0.4:
                scene = replace(scene, shapes=(replace(scene.shapes[0], cell=DEFAULT_LAYOUT[1][0]),))
            if self.rng.random() < 0.3:
                size = self.rng.choice(SIZES)
                scene = replace(scene, shapes=tuple(replace(s, size=size) for s in scene.shapes))
            if self.rng.random() < 0.3:
                scene = replace(scene, background=self.rng.choice(BACKGROUNDS))
            if scene.key not in self.exclude and scene.background not in {s.colour for s in scene.shapes}:
                return scene

    def edit(self, language: str, kind: str | None = None) -> Example:
        """An edit of one of the user's pictures (whose result is no held-back scene, when training)."""
        while True:
            example = self._edit(language, kind)
            if example.scene is None or example.scene.key not in self.exclude:
                return example

    def _edit(self, language: str, kind: str | None) -> Example:
        write = self.writer(language)
        how = self.rng.choices(("implicit", "last", "ordinal", "id", "reply"), (45, 10, 17, 10, 18))[0]
        parent = self.scene()
        full, single = len(parent.shapes) == 3, len(parent.shapes) == 1
        kinds = [k for k in EDITS if not (k == "add" and full) and not (k == "remove" and single)]
        if kind not in kinds:
            weights = self.lesson.edit_weights
            kind = (
                self.rng.choice(kinds) if weights is None else self.rng.choices(kinds, [weights[k] for k in kinds])[0]
            )
        count = self.rng.choices(range(1, MAX_PICTURES + 1), (4, 3, 2, 1))[0]
        if (
            self.lesson.elsewhere > 0 and how == "implicit" and count > 1 and kind in NAMED
            and self.rng.random() < self.lesson.elsewhere
        ):  # fmt: skip
            return self._elsewhere(write, kind, parent, count)
        if how == "reply":
            mine = self.pictures(count, self.rng.randint(1, 6))
            replied = PictureLine(REPLIED, self.new_id(), parent.caption())
            if self.rng.random() < 0.5:  # often it is one of theirs too
                k = self.rng.randrange(count)
                replied = replace(replied, id=mine[k].id)
                mine = (*mine[:k], replace(mine[k], prompt=parent.caption()), *mine[k + 1 :])
            return write.edit(kind, parent, (*mine, replied), REPLIED, how)
        if how in ("implicit", "last"):
            mine = self.pictures(count - 1, self.rng.randint(1, 6))
            number = int(mine[-1].label[1:]) + 1 if mine else self.rng.randint(1, 6)
            mine = (*mine, PictureLine(f"#{number}", self.new_id(), parent.caption()))
            return write.edit(kind, parent, mine, LAST, how)
        start = 1 if how == "ordinal" else self.rng.randint(1, 6)
        mine = self.pictures(count, start, include=parent)
        chosen = next(p for p in mine if p.prompt == parent.caption())
        return write.edit(kind, parent, mine, chosen.id, how)

    def _elsewhere(self, write: Writer, kind: str, parent: Scene, count: int) -> Example:
        """An implicit edit of an earlier picture: the only one with an object of the named colour or shape."""
        example = write.edit(kind, parent, (), LAST, "implicit", explicit=True)
        _, colour, shape = example.answer.target.split()
        others: list[Scene] = []
        while len(others) < count - 1:
            scene = self.scene()
            if all(s.colour != colour and s.shape != shape for s in scene.shapes):
                others.append(scene)
        k = self.rng.randrange(count - 1)  # anywhere but last
        start = self.rng.randint(1, 6)
        scenes = [*others[:k], parent, *others[k:]]
        mine = tuple(PictureLine(f"#{start + n}", self.new_id(), s.caption()) for n, s in enumerate(scenes))
        return replace(example, pictures=mine, answer=replace(example.answer, ref=mine[k].id))

    def chat(self, language: str) -> Example:
        """A chat line."""
        count = self._talk_pictures()
        pictures = self.pictures(count, self.rng.randint(1, 6))
        category = self.rng.choice(("greet", "thanks", "ask", "bye"))
        return self.writer(language).chat(category, pictures)

    def outside(self, language: str) -> Example:
        """A request outside the world."""
        count = self._talk_pictures()
        return self.writer(language).outside(self.pictures(count, self.rng.randint(1, 6)))

    def _talk_pictures(self) -> int:
        """How many pictures a chat or out-of-world line comes after: rarely any, or (`busy`) up to four."""
        return self._after(self.lesson.busy)

    def _after(self, share: float) -> int:
        """How many pictures a turn comes after: one to four for `share` of turns, else mostly none."""
        if share > 0 and self.rng.random() < share:
            return self.rng.randint(1, MAX_PICTURES)
        return self.rng.choice((0, 0, 0, 1))


def fingerprint(examples: list[Example]) -> str:
    """A hash of the examples' chats: the training record keeps it, so a changed generator shows."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(example.messages(), ensure_ascii=False).encode())
    return digest.hexdigest()


def training_examples(count: int, seed: int = TRAIN_SEED, lesson: Lesson = FIRST) -> Iterator[Example]:
    """The training stream of one lesson: languages in turn, kinds by the lesson's mix."""
    generator = Generator(seed, held=False, lesson=lesson)
    kinds, weights = zip(*lesson.mix.items(), strict=True)
    for n in range(count):
        language = LANGUAGES[n % len(LANGUAGES)]
        kind = generator.rng.choices(kinds, weights)[0]
        yield getattr(generator, kind)(language)


@dataclass(frozen=True)
class HeldBack:
    """The held-back sets, per kind."""

    requests: list[Example]
    edits: list[Example]
    chat: list[Example]
    outside: list[Example]
    short: list[Example]  # requests in as few words as the defaults allow ("draw a red circle")
    bare: list[Example]  # one object said bare, after none to four pictures ("draw a red circle" in a busy chat)


def held_back(
    requests: int = 50, edits: int = 20, chat: int = 10, short: int = 10, bare: int = 10, seed: int = HELD_SEED
) -> HeldBack:
    """Per language `requests` requests, `edits` edits (every kind in turn), `chat` chat lines, `short`
    short requests (of the held-back scenes with every default) and `bare` one-object requests said bare
    (after none, one, ... four pictures in turn); every held-back out-of-world line (10 in all)."""
    scenes = held_scenes()
    generator = Generator(seed, held=True, scenes=scenes)
    out = HeldBack([], [], [], [], [], [])
    for language in LANGUAGES:
        out.requests.extend(generator.request(language) for _ in range(requests))
        out.edits.extend(generator.edit(language, EDITS[n % len(EDITS)]) for n in range(edits))
        tongue = TONGUES[language]
        # The categories in turn, so that every one is asked.
        lines = [(c, f.held[n]) for n in range(3) for c, f in tongue.chat.items() if n < len(f.held)]
        out.chat.extend(
            Example("chat", language, (), line, Answer("reply", tongue.chat_reply[c])) for c, line in lines[:chat]
        )
        out.outside.extend(
            Example("outside", language, (), line, Answer("reply", tongue.outside_reply))
            for line in tongue.outside.held
        )
    # Last, so that the sets above stay what they were before this one was added.
    defaults = [s for s in scenes if s == defaulted(s)]
    for language in LANGUAGES:
        write = generator.writer(language)
        out.short.extend(write.request(generator.rng.choice(defaults), (), short=True) for _ in range(short))
    # Last again, for the same reason.
    singles = [s for s in defaults if len(s.shapes) == 1]
    for language in LANGUAGES:
        write = generator.writer(language)
        for n in range(bare):
            count = n % (MAX_PICTURES + 1)
            before = generator.pictures(count, generator.rng.randint(1, 6)) if count else ()
            out.bare.append(write.request(generator.rng.choice(singles), before, short=True, bare=True))
    return out
