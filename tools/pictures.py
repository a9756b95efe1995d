"""The pictures egaku knows: one shape for what every image carries, rendered or remembered."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

# How an image came to be. Edits name their mode (zoom and pan: outpainting; upscale: the upscaler network);
# the history stores the kind as text. "reference": drawn by a model that read other pictures (the same character
# in a new scene, the cat from an upload); "blend": /blend.
ImageKind = Literal[
    "generate",
    "upload",
    "regenerate",
    "subtle",
    "strong",
    "region",
    "instruct",
    "zoom",
    "pan",
    "upscale",
    "reference",
    "blend",
]
# Edits of these are drawn at the model's own size (the worker fits them): their pixels may be past its cap.
OWN_SIZE_KINDS: tuple[ImageKind, ...] = ("upload", "upscale")
# What a parent gave its child: the picture edited, a subject to take (a character, an object), or a style.
ParentRole = Literal["edited", "reference", "style"]


@dataclass(frozen=True)
class Parent:
    """One picture an image was made from, and what it gave; an image keeps its parents in order."""

    id: str
    role: ParentRole


Lineage = tuple[Parent, ...]  # an image's parents, in order ("picture 1", "picture 2"...)


def edited(picture_id: str) -> Lineage:
    """The lineage of an edit of one picture."""
    return (Parent(picture_id, "edited"),)


@dataclass(frozen=True, kw_only=True)
class Picture:
    """What every image carries: the asker's words, the final prompt and the drawing parameters."""

    prompt: str
    negative_prompt: str | None
    seed: int
    width: int
    height: int
    steps: int
    model: str  # the preset; "" for an upload
    user_words: str
    kind: ImageKind = "generate"
    parent_id: str | None = None  # the first of `parents` (kept for older readers)
    parents: Lineage = ()  # every picture it was made from, in order
    score: float | None = None  # best-of-N: how well it matched the prompt (the worker's scorer)


@dataclass(frozen=True, kw_only=True)
class RenderedImage(Picture):
    """One finished image, as a backend returns it and the bot posts it."""

    png: bytes = field(repr=False)
    guidance: float
    id: str | None = None  # its history id, once recorded
    # best-of-N: the candidates this image was chosen over (it is the best of them all); kept, not posted
    candidates: tuple[RenderedImage, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        """A short line for the model's context: parameters, never pixels."""
        return f"seed {self.seed}, {self.width}x{self.height}, model {self.model}"


def as_rendered(picture: Picture, png: bytes, **changes: Any) -> RenderedImage:
    """A remembered picture as an image to post: its own fields and these bytes, with `changes` laid over them."""
    own = {f.name: getattr(picture, f.name) for f in fields(Picture)}
    return RenderedImage(**{**own, "png": png, "guidance": 0.0, **changes})
