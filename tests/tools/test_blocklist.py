"""The blocklist reads a prompt as the text encoder's tokenizer does: glued, full-width and inflected words count."""

from __future__ import annotations

import pytest

from tools.checks.blocklist import DEFAULT_BLOCKLIST, Blocklist, letter_runs

BLOCK = Blocklist(DEFAULT_BLOCKLIST)


@pytest.mark.parametrize(
    ("prompt", "entry"),
    [
        ("a nude woman", "nude"),
        ("nude_woman on a beach", "nude"),  # "_" splits words for the tokenizer
        ("nude2", "nude"),
        ("2nude", "nude"),
        ("(nude)", "nude"),
        ("ＮＵＤＥ figure", "nude"),  # full-width letters fold to plain ones (NFKC)
        ("NuDe", "nude"),
        ("nudes", "nude"),  # an inflection starts with the word
        ("a nudewoman", "nude"),
        ("full nudity", "nudity"),
        ("a porno still", "porn"),
        ("explicit_sex scene", "explicit sex"),  # a two-word entry across a glue character
        ("EXPLICIT   SEX", "explicit sex"),
        ("anatomy with genitalia", "genital"),
        ("ヌードデッサン", "ヌード"),  # written without spaces: matched anywhere
        ("ｎｓｆｗ art", "nsfw"),
    ],
)
def test_the_encoders_words_are_caught(prompt: str, entry: str) -> None:
    assert BLOCK.hit(prompt) == entry


@pytest.mark.parametrize(
    "prompt",
    [
        "a brass sextant on a map",  # "sex" is not an entry; short words never match as a prefix
        "a denuded hillside",  # a blocked word inside another word is not at its start
        "explicit instructions and sex-ed posters",  # the words of "explicit sex" must be neighbours
        "a quiet lake at dawn",
    ],
)
def test_innocent_prompts_pass(prompt: str) -> None:
    assert BLOCK.hit(prompt) is None


def test_words_are_split_as_a_tokenizers_pre_split_reads_them() -> None:
    assert letter_runs("Nude_woman2ＡＢ, café") == ["nude", "woman", "ab", "café"]
    assert Blocklist([]).hit("nude") is None and not Blocklist(["  ", "__"])
