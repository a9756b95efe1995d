"""Which language a prompt is written in, and how to name the languages a model reads.

A model preset says which languages its text encoder reads well (`prompt_language`,
English by default; Qwen-Image reads Chinese and English). The agent keeps the user's
language when the model reads it, and translates into English otherwise; the prompt's
language is checked against the model before it is drawn, and kept in the history.

Detection is by script, which is what matters to a text encoder's vocabulary: kana mean
Japanese, Hangul Korean, Han characters without kana Chinese, and so on. Latin-script
text counts as English: the encoders told apart here read Latin script the same way.
Text in quotes does not count: quoted words stay verbatim in their own language inside
an English prompt (the text to render on a sign, for example).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from egaku.i18n import Text, _

ENGLISH = "en"

LANGUAGE_NAMES = {
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "ko": "Korean",
    "ru": "Russian",
    "uk": "Ukrainian",
    "ar": "Arabic",
    "he": "Hebrew",
    "hi": "Hindi",
    "th": "Thai",
    "el": "Greek",
}


@dataclass(frozen=True)
class PromptLanguages:
    """The languages each model preset reads, and those of the worker's default model."""

    by_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default: tuple[str, ...] = (ENGLISH,)

    def of(self, model: str | None) -> tuple[str, ...]:
        """The languages `model` reads (None: the default model; an unknown preset: English)."""
        if model is None:
            return self.default
        return self.by_model.get(model, (ENGLISH,))


# Quoted spans, in the quote marks people use across these languages.
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|「[^」]*」|『[^』]*』|«[^»]*»|„[^“”]*[“”]|《[^》]*》')

# Unicode character-name prefixes -> the language their script stands for here.
_SCRIPTS = (
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("HALFWIDTH KATAKANA", "ja"),
    ("HANGUL", "ko"),
    ("CJK", "zh"),
    ("CYRILLIC", "ru"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("DEVANAGARI", "hi"),
    ("THAI", "th"),
    ("GREEK", "el"),
    ("LATIN", ENGLISH),
)
# Scripts written without spaces: each character counts, not each word.
_CHARACTER_SCRIPTS = frozenset({"ja", "ko", "zh"})
_LETTERS = re.compile(r"[^\W\d_]+")


def _script(char: str) -> str | None:
    name = unicodedata.name(char, "")
    return next((language for prefix, language in _SCRIPTS if name.startswith(prefix)), None)


def detect_language(text: str) -> str | None:
    """The language of `text` outside quotes, by script; None when it has no letters.

    Japanese, Chinese and Korean characters count one each, and a word of another script
    (two letters or more) counts as two such characters: a few English words in a Japanese
    prompt ("cyberpunk", a brand) do not make it English, nor a name in an English one.
    Any kana make Han text Japanese; Latin script is English.
    """
    characters: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for run in _LETTERS.findall(_QUOTED.sub(" ", text)):
        scripts = [_script(char) for char in run]
        characters.update(s for s in scripts if s in _CHARACTER_SCRIPTS)
        spelled = [s for s in scripts if s is not None and s not in _CHARACTER_SCRIPTS]
        if len(spelled) >= 2:
            words[Counter(spelled).most_common(1)[0][0]] += 1
    total = sum(characters.values())
    if not total and not words:
        return None
    if total < 2 * sum(words.values()):
        return words.most_common(1)[0][0]
    if characters["ko"] >= characters["ja"] + characters["zh"]:
        return "ko"
    return "ja" if characters["ja"] else "zh"


def name_of(language: str) -> str:
    """A language's English name ("ja" -> "Japanese"); the code itself when unknown."""
    return LANGUAGE_NAMES.get(language, language)


def names_of(languages: tuple[str, ...]) -> str:
    """Languages joined for a sentence: "Chinese or English"."""
    names = [name_of(language) for language in languages]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def target_language(languages: tuple[str, ...]) -> str:
    """The language to translate into when the user's is not read: English if the model reads it."""
    return ENGLISH if ENGLISH in languages else languages[0]


def prompt_language_rule(languages: tuple[str, ...]) -> str:
    """How to choose the prompt's language, for the system prompt and the tools' schema."""
    into = name_of(target_language(languages))
    if languages == (ENGLISH,):
        return "in English (translate other languages into English)"
    if len(languages) == 1:
        return f"in {into} (the drawing model reads only {into}: translate other languages into {into})"
    return (
        f"in the user's own language when it is {names_of(languages)} (the drawing model reads these natively: "
        f"do not translate them), otherwise translated into {into}"
    )


def language_refusal(language: str, languages: tuple[str, ...], model: str) -> Text:
    """Why a prompt in `language` is refused for a model reading `languages` (the LLM reads it and rewrites)."""
    return _(
        "the {model} model reads {languages}, not {language}: write `prompt` in {target}",
        model=model,
        languages=names_of(languages).replace(" or ", " and "),
        language=name_of(language),
        target=name_of(target_language(languages)),
    )
