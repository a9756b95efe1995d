"""The world tokenizer: one token per world word, characters for anything else."""

from __future__ import annotations

from training.world.model import bpe_merges, world_tokenizer
from training.world.scenes import held_out_scenes, vocabulary


def test_every_world_word_is_one_token() -> None:
    tokenizer = world_tokenizer()
    for word in vocabulary():
        assert tokenizer.tokenize(word) == [f"{word}</w>"]


def test_a_caption_is_one_token_per_word_and_fits_clip() -> None:
    tokenizer = world_tokenizer()
    longest = max((s.caption() for s in held_out_scenes()), key=len)
    tokens = tokenizer.tokenize(longest)
    assert len(tokens) == len(longest.replace(",", " ,").split()) < 75


def test_unknown_words_fall_back_to_characters() -> None:
    assert world_tokenizer().tokenize("a fox") == ["a</w>", "f", "o", "x</w>"]


def test_merges_are_the_known_ones_in_any_word_order() -> None:
    # "re" is the one pair seen twice; every later step is a tie, taken in the pairs' own order.
    known = [("r", "e"), ("e", "n</w>"), ("g", "re"), ("gre", "en</w>"), ("re", "d</w>")]
    assert bpe_merges(["red", "green"]) == known
    assert bpe_merges(["green", "red"]) == known
    assert bpe_merges(["ab"]) == [("a", "b</w>")]
    words = vocabulary()
    assert bpe_merges(words[::-1]) == bpe_merges(sorted(words)) == bpe_merges(words)
