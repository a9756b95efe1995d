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


def test_merges_are_deterministic() -> None:
    assert bpe_merges(["red", "green"]) == bpe_merges(["red", "green"])
    assert bpe_merges(["ab"]) == [("a", "b</w>")]
