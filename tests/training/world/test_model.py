"""The world tokenizer: one token per world word, characters for anything else."""

from __future__ import annotations

from training.world.model import bpe_merges, build_vae, pin_posterior, world_tokenizer
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


def test_a_pinned_vae_samples_its_mean() -> None:
    """img2img and inpaint sample the posterior: for the world's deterministic VAE that must be the mean."""
    import torch

    torch.manual_seed(0)
    vae = build_vae()
    picture = torch.rand(2, 3, 64, 64) * 2 - 1
    mean = vae.encode(picture).latent_dist.mean
    pinned = pin_posterior(vae).encode(picture).latent_dist
    assert torch.equal(pinned.mean, mean)
    assert float(pinned.std.max()) < 1e-6
    assert torch.allclose(pinned.sample(torch.Generator().manual_seed(1)), mean, atol=1e-5)


def test_the_unets_32x32_level_takes_its_width_from_the_config() -> None:
    from training.world.model import build_unet
    from training.world.steps import TrainConfig

    assert build_unet(32).config.block_out_channels == (16, 32, 64, 64)  # the shipped width
    assert build_unet(32, TrainConfig(unet_top_channels=32).unet_top_channels).config.block_out_channels == (
        32, 32, 64, 64
    )  # fmt: skip
    assert build_unet(16, 32).config.block_out_channels == (32, 64, 64)  # 16x16 latents have no such level
