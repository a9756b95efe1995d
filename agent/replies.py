"""What a model's answer must be before it reaches a user: bounded, not looping, and about something.

Small local models (and any model at its token cap) loop: the same sentence or paragraph
over and over. A reply is cut at the first repeat, then capped at a length that fits in
one Discord message with room for the rest.
"""

from __future__ import annotations

import re
import unicodedata

MAX_REPLY_CHARS = 1500  # one Discord message (2000) with room for a notice
MAX_INPUT_CHARS = 4000  # a user's message, as Discord's own longest; also /imagine's prompt bound
ELLIPSIS = "…"

# A sentence ends at . ! ? or their CJK forms, or at a line break.
_SENTENCE = re.compile(r"[^.!?。！？\n]*(?:[.!?。！？]+|\n+|$)")


def _key(sentence: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", sentence.casefold()).split())


def cut_repetition(text: str) -> str:
    """The text up to the first sentence that repeats an earlier one (a degenerate loop)."""
    seen: set[str] = set()
    kept: list[str] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        key = _key(sentence)
        if len(key) >= 8 and key in seen:
            break
        if key:
            seen.add(key)
        kept.append(sentence)
    return "".join(kept).strip()


def cap(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """At most `limit` characters, cut at the last sentence or word boundary that fits."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    for boundary in (max(head.rfind(c) for c in ".!?。！？\n"), head.rfind(" ")):
        if boundary > limit // 2:
            head = head[: boundary + 1]
            break
    return head.rstrip() + ELLIPSIS


def tidy_reply(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """A model's text as the user sees it: loops cut, length capped."""
    return cap(cut_repetition(text.strip()), limit)


# Zero-width and other format characters (Cf) carry no words: U+200B, U+200D, U+2060, U+FEFF...
def normalise_input(text: str) -> str:
    """A user's message without format characters (zero-width spaces, BOMs), whitespace folded per line."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line).strip()
