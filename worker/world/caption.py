"""Reading the shape world's own sentences: a caption back into a scene, an edit's target words into a pick.

The world's grammar is closed (`worker.world.scene`): a caption is what `Scene.caption()` or
`Scene.paraphrases()` writes, and the embedded LLM is taught to write exactly those. So parsing it
is exact, and anything outside the grammar is refused rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.world.scene import PALETTE, POSITIONS, SHAPES, SIZE_WORDS, Scene, Shape

_SIZE_OF = {word: size for size, words in SIZE_WORDS.items() for word in words}
_CELL_OF = {phrase: cell for cell, phrases in POSITIONS.items() for phrase in phrases}
_WORD = "|".join
_OBJECT = re.compile(
    rf"an? ({_WORD(_SIZE_OF)}) ({_WORD(PALETTE)}) ({_WORD(SHAPES)}) ({_WORD(map(re.escape, _CELL_OF))})"
)
_BACKGROUND_LAST = re.compile(rf"(?P<objects>.+), on an? (?P<background>{_WORD(PALETTE)}) background")
_BACKGROUND_FIRST = re.compile(rf"an? (?P<background>{_WORD(PALETTE)}) background(?: with (?P<objects>.+))?")
# Where a target names a place: the position phrases without their prepositions ("top left", "middle").
_PLACES = {
    re.sub(r"^(at|in|on) (the )?", "", phrase): cell for cell, phrases in POSITIONS.items() for phrase in phrases
}


class CaptionError(ValueError):
    """The text is not a sentence of the shape world's grammar."""


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").split())


def parse_caption(text: str) -> Scene:
    """The scene a world caption describes (objects centred in their cells); CaptionError outside the grammar."""
    sentence = _normalise(text)
    found = _BACKGROUND_LAST.fullmatch(sentence) or _BACKGROUND_FIRST.fullmatch(sentence)
    if found is None:
        raise CaptionError(f"not a shape-world caption (no background named the world's way): {text!r}")
    objects = found.group("objects")
    shapes: list[Shape] = []
    if objects:
        head, _, last = objects.rpartition(" and ")
        phrases = [*head.split(", "), last] if head else [last]
        for phrase in phrases:
            match = _OBJECT.fullmatch(phrase)
            if match is None:
                raise CaptionError(f"not a shape-world object: {phrase!r}")
            size, colour, shape, where = match.groups()
            shapes.append(Shape(shape=shape, colour=colour, size=_SIZE_OF[size], cell=_CELL_OF[where]))
    return Scene(background=found.group("background"), shapes=tuple(shapes))


@dataclass(frozen=True)
class Target:
    """What an edit's target words pick out: any of colour, shape, size and cell, or the background."""

    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    cell: tuple[int, int] | None = None
    background: bool = False

    @property
    def names_an_object(self) -> bool:
        """Whether the words say anything about an object."""
        return any(v is not None for v in (self.colour, self.shape, self.size, self.cell))

    def picks(self, colour: str, shape: str, size: str, cell: tuple[int, int]) -> bool:
        """Whether an object with these attributes fits every attribute the words name."""
        wanted = (self.colour, self.shape, self.size, self.cell)
        return all(w is None or w == got for w, got in zip(wanted, (colour, shape, size, cell), strict=True))


def parse_target(words: str) -> Target:
    """The attributes that short words such as "the red circle" or "the background" name (unknown words are skipped)."""
    text = f" {_normalise(words)} "
    tokens = text.split()
    singular = [t[:-1] if t.endswith("s") and t[:-1] in SHAPES else t for t in tokens]
    colour = next((t for t in singular if t in PALETTE), None)
    shape = next((t for t in singular if t in SHAPES), None)
    size = next((_SIZE_OF[t] for t in singular if t in _SIZE_OF), None)
    # The longest place phrase wins: "top left" over "top" and "left".
    places = sorted((p for p in _PLACES if f" {p} " in text), key=len, reverse=True)
    cell = _PLACES[places[0]] if places else None
    if "background" in singular:
        return Target(background=True)
    return Target(colour=colour, shape=shape, size=size, cell=cell)
