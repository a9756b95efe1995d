"""The shape world's SD1.5-architecture pipeline: its tokenizer, component configs and shipped weights.

The components are stock diffusers and transformers classes (AutoencoderKL, UNet2DConditionModel,
CLIPTextModel, CLIPTokenizer) with small configs, so the saved folder loads through
`StableDiffusionPipeline.from_pretrained` like any model id.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

from training.world.scenes import vocabulary
from worker.tiny import tiny_clip_vocab

TEXT_WIDTH = 64
LATENT_CHANNELS = 4


def bpe_merges(words: list[str]) -> list[tuple[str, str]]:
    """Train byte-pair merges until every word is one token.

    Applying merges in rank order replays training exactly, so each vocabulary word always
    tokenises to itself; any other text falls back to one token per character.
    """
    pieces = {w: [*w[:-1], w[-1] + "</w>"] for w in words}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for seq in pieces.values():
            pairs.update(itertools.pairwise(seq))
        if not pairs:
            return merges
        # Most frequent first; ties broken by the pair itself, so the result is deterministic.
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for word, seq in pieces.items():
            merged: list[str] = []
            i = 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    merged.append(seq[i] + seq[i + 1])
                    i += 2
                else:
                    merged.append(seq[i])
                    i += 1
            pieces[word] = merged


def world_tokenizer() -> Any:
    """A CLIP tokenizer whose vocabulary holds every byte plus one token per world word."""
    from transformers import CLIPTokenizer

    merges = bpe_merges(vocabulary())
    base = tiny_clip_vocab()
    specials = [t for t in base if t.startswith("<|")]
    tokens = [t for t in base if t not in specials]
    known = set(tokens)
    for merge in merges:
        joined = "".join(merge)
        if joined not in known:
            known.add(joined)
            tokens.append(joined)
    vocab = {tok: i for i, tok in enumerate([*tokens, *specials])}
    # The fast backend takes merges as pairs; the annotation names only the string forms.
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # type: ignore[arg-type]


# Latent side -> the VAE's blocks (each but the last halves the side of 64x64 pictures).
VAE_BLOCKS = {16: [16, 32, 32], 32: [16, 32]}


def build_vae(latent_size: int = 16) -> Any:
    """A VAE from 64x64 pixels to `latent_size`^2 x 4 latents (three blocks for 16, two for 32)."""
    from diffusers import AutoencoderKL

    blocks = VAE_BLOCKS[latent_size]
    return AutoencoderKL(
        block_out_channels=blocks,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * len(blocks),
        up_block_types=["UpDecoderBlock2D"] * len(blocks),
        latent_channels=LATENT_CHANNELS,
        layers_per_block=1,
        # Groups of several channels: a group of one channel is instance norm, which erases the
        # colour of a flat region (most of every picture here) and stalls training.
        norm_num_groups=4,
        sample_size=64,
        mid_block_add_attention=False,  # flat shapes need no global attention; it would double the cost
    )


def pin_posterior(vae: Any) -> Any:
    """Pin the VAE's posterior spread to nothing (log-variance -30, diffusers' floor): sampling it gives its mean.

    The VAE is trained as a deterministic autoencoder on its posterior's mean, so its log-variance
    head never learned anything: it stayed near 0, a spread of 1, as large as the latents
    themselves. Diffusers' img2img and inpaint pipelines sample the posterior when they encode a
    picture, and got that noise back: speckled inpaints, and a kept region that decoded as mush.
    Only the log-variance half of `quant_conv` changes; the mean, and so every latent the UNet
    learned, stays as it was.
    """
    import torch

    half = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[half:] = 0.0
        vae.quant_conv.bias[half:] = -30.0
    return vae


def build_text_encoder(vocab_size: int) -> Any:
    """A small CLIP text encoder over the world tokenizer (trained with the UNet)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
            hidden_size=TEXT_WIDTH,
            intermediate_size=4 * TEXT_WIDTH,
            num_attention_heads=4,
            num_hidden_layers=3,
            vocab_size=vocab_size,
            max_position_embeddings=77,
            hidden_act="gelu",
            projection_dim=TEXT_WIDTH,
        )
    )


def build_unet(latent_size: int = 16, top_channels: int = 16) -> Any:
    """A small UNet over the latents; cross-attention at 8x8 and 4x4, where a 3x3 grid of positions binds.

    Over 32x32 latents a narrow level (`top_channels`, 16 by default) comes first: at 16 it costs about
    what the 32-channel 16x16 level costs, so the step grows by about half, not fourfold.
    """
    from diffusers import UNet2DConditionModel

    plain = 1 if latent_size == 16 else 2  # levels above 8x8, without cross-attention
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        block_out_channels=(top_channels, 32, 64, 64)[2 - plain :],
        layers_per_block=1,
        down_block_types=(*["DownBlock2D"] * plain, "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", *["UpBlock2D"] * plain),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        norm_num_groups=8,
        # The caption, pooled, also joins the timestep embedding (diffusers' "text" addition
        # embedding, as in Kandinsky/DeepFloyd): a direct path for what the whole picture is (the
        # background, which shapes), which cross-attention alone learned only slowly.
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )


def training_scheduler() -> Any:
    """SD1.5's noise schedule rescaled to zero terminal SNR, with v-prediction (Lin et al., 2023).

    SD1.5's last step still leaks the picture's low frequencies: a flat background, averaged over
    a few hundred latent pixels, is readable through the noise even at t=900. So training never
    needed the caption for the background or the layout (measured: 5% lower loss with the right
    captions than with shuffled ones), and sampling took both from the starting noise. At zero
    terminal SNR the first step sees pure noise, and only the caption can tell what to draw;
    v-prediction is what makes that step trainable.
    """
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
    )  # fmt: skip


def inference_scheduler() -> Any:
    """The sampler the shipped pipeline uses: the same schedule, DPM-Solver++ for few steps.

    "trailing" spacing starts sampling at the last, pure-noise step, as zero terminal SNR needs.
    """
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(training_scheduler().config)


def save_pipeline(directory: Path, vae: Any, text_encoder: Any, tokenizer: Any, unet: Any) -> Path:
    """Assemble the trained parts as a StableDiffusionPipeline and save it (safetensors)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=inference_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory, safe_serialization=True)  # type: ignore[attr-defined]
    return directory
