"""The safety blocklist, matched on the words the drawing model's text encoder reads.

A text encoder's tokenizer (CLIP's BPE, and the BPE and SentencePiece tokenizers of T5, Qwen
and the rest) first folds and splits the text: runs of letters, single digits, and runs of
other characters each become their own pieces, and a word glued to another by `_`, a digit
or punctuation still reaches the encoder whole ("nude_woman", "nude2", "2nude"). Full-width
and other compatibility forms read as their plain letters ("ｎｕｄｅ"). So the prompt is
folded the same way (NFKC, then case folding), split into letter runs, and a blocked entry
matches a run of the same words. A letter run that *starts* with a blocked word of four
letters or more matches too: BPE keeps "nude" a token of "nudewoman" and "nudes". Entries in scripts written
without spaces (Japanese, Chinese) match anywhere in the folded text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Letter runs, the way the tokenizers' pre-split sees them (digits, `_` and punctuation split them).
_LETTERS = re.compile(r"[^\W\d_]+")
PREFIX_MIN = 4  # shorter words match whole only ("sex" must not block "sextant")

# Every default entry with its obvious inflections: the list is matched word by word, not by stem.
DEFAULT_BLOCKLIST = (
    "nude", "nudes", "nudity", "naked", "nakedness", "nsfw", "porn", "porno", "porns", "pornographic",
    "pornography", "explicit sex", "sex act", "sexual intercourse", "gore", "gory", "genital", "genitals",
    "genitalia", "topless", "bottomless", "hentai", "ヌード", "全裸", "裸体", "裸婦", "色情",
)  # fmt: skip


def letter_runs(text: str) -> list[str]:
    """The text's words as a tokenizer's pre-split reads them: compatibility forms and case folded."""
    return _LETTERS.findall(unicodedata.normalize("NFKC", text).casefold())


class Blocklist:
    """Which blocked entry, if any, a prompt uses."""

    def __init__(self, entries: Iterable[str]) -> None:
        listed = [entry for entry in entries if letter_runs(entry)]
        self._unspaced = [e for e in listed if not e.isascii() and " " not in e.strip()]
        self._entries = [(e, tuple(letter_runs(e))) for e in listed if e not in self._unspaced]

    def __bool__(self) -> bool:
        return bool(self._entries or self._unspaced)

    def hit(self, prompt: str) -> str | None:
        """The first blocked entry the prompt uses, else None."""
        folded = unicodedata.normalize("NFKC", prompt).casefold()
        for entry in self._unspaced:
            if unicodedata.normalize("NFKC", entry).casefold() in folded:
                return entry
        runs = letter_runs(prompt)
        for entry, words in self._entries:
            for start in range(len(runs) - len(words) + 1):
                window = runs[start : start + len(words)]
                if window[:-1] == list(words[:-1]) and _word_matches(window[-1], words[-1]):
                    return entry
        return None


def _word_matches(run: str, word: str) -> bool:
    return run == word or (len(word) >= PREFIX_MIN and run.startswith(word))
