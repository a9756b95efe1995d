"""What the model is told about the pictures of a turn, before it writes a prompt.

An edit of an uploaded picture used to be written blind: the model knew the upload only
as "(uploaded image cat.jpg)". Now every upload, and the image a user replies to, is
described to it before its first call of the turn:

- by default, in words: the worker's captioner (the one behind /describe) writes a
  caption once, the history keeps it, and the history note shows it from then on;
- when the config says the LLM has vision, as the image itself: a small JPEG thumbnail
  next to the user's words. Then no caption is made, and only then do pixels reach the model.

Images the model drew itself are described by their own prompt, already in the note.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from PIL import Image

from egaku.errors import EgakuError
from tools.stores.history import Generation, History

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 256  # pixels on the long side: enough to see what is in a picture, a few KB of tokens


HISTORY_LIMIT = 10  # the newest pictures the model is shown


def history_note(mine: list[Generation], replied: Generation | None = None) -> str:
    """The compact history the model sees: ids, short prompts and captions, never pixels."""
    lines = [g.line(n) for n, g in enumerate(mine, start=1)][-HISTORY_LIMIT:]
    text = (
        "This user's images here, oldest first (#n is the ordinal they may use):\n" + "\n".join(lines)
        if lines
        else "This user has no images here yet."
    )
    if replied is not None:
        shown = replied.line(0).split(" ", 1)[1]  # without the ordinal: it may not be one of theirs
        text += f"\nThe user replied to the message showing this image (ref 'reply'): {shown}"
    return text


class Captioner(Protocol):
    """Anything that describes a picture in English words: the worker client, or a fake."""

    async def describe(self, image: bytes) -> str:
        """A caption for PNG bytes; an EgakuError when it cannot."""
        ...


@dataclass(frozen=True)
class Seen:
    """What the model gets to know about a turn's images."""

    note: str  # the compact history, captions included (system message)
    thumbnails: tuple[str, ...] = ()  # data URLs, next to the user's words; only with vision


def thumbnail(png: bytes, side: int = THUMBNAIL_SIDE) -> str:
    """A small JPEG of the picture, as a data URL (CPU work: call it in a thread)."""
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB")
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


class Eyes:
    """Prepares, once per turn, what the model is told about the images the turn is about."""

    def __init__(self, history: History, captioner: Captioner | None, vision: bool) -> None:
        self._history = history
        self._captioner = captioner
        self._vision = vision

    async def look(self, conversation: str, user_id: str, source_id: str | None, reply_to: str | None) -> Seen:
        """The note (and, with vision, the thumbnails) for a turn."""
        mine = await self._history.mine(conversation, user_id)
        replied = await self._replied(mine, reply_to)
        # The bot records an attachment under the message that carried it, so it is already in `mine`.
        attached = [g for g in mine if source_id and g.message_id == source_id and g.kind == "upload"]
        about = _unique([*attached, *replied])
        if self._vision:
            thumbnails = [await asyncio.to_thread(self._thumbnail, g) for g in about]
            return Seen(history_note(mine, next(iter(replied), None)), tuple(thumbnails))
        wanted = _unique([*about, *(g for g in mine[-HISTORY_LIMIT:] if g.kind == "upload")])
        captions = await self._captions([g for g in wanted if g.caption is None])
        mine = [replace(g, caption=captions.get(g.id, g.caption)) for g in mine]
        replied = [replace(g, caption=captions.get(g.id, g.caption)) for g in replied]
        return Seen(history_note(mine, next(iter(replied), None)))

    async def _replied(self, mine: list[Generation], reply_to: str | None) -> list[Generation]:
        if not reply_to:
            return []
        shown = [g for g in mine if g.message_id == reply_to] or await self._history.by_message(reply_to)
        return shown[:1]

    def _thumbnail(self, generation: Generation) -> str:
        return thumbnail(self._history.png(generation))

    async def _captions(self, images: list[Generation]) -> dict[str, str]:
        """Caption each image once and keep the caption in the history; a failing captioner is skipped."""
        made: dict[str, str] = {}
        if self._captioner is None:
            return made
        for generation in images:
            try:
                png = await asyncio.to_thread(self._history.png, generation)
                caption = " ".join((await self._captioner.describe(png)).split())
            except (EgakuError, OSError) as exc:
                # The turn goes on without it (the model still has the id); the next turn tries again.
                log.warning("could not caption image %s: %s: %s", generation.id, type(exc).__name__, exc)
                continue
            if caption:
                await self._history.set_caption(generation.id, caption)
                made[generation.id] = caption
        return made


def _unique(images: Sequence[Generation]) -> list[Generation]:
    """The images in order, each once."""
    first: dict[str, Generation] = {}
    for generation in images:
        first.setdefault(generation.id, generation)
    return list(first.values())
