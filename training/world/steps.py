"""What the world's training phases share: the settings, the captions they train on, one denoising batch, one
optimiser step and its schedule."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.world.scenes import Scene


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the weights (with the code itself)."""

    seed: int = 0
    scenes: int = 12_000
    vae_steps: int = 1_200
    vae_batch: int = 16
    vae_lr: float = 2e-3
    # Extra loss weight on the pixels next to an edge: small shapes are told apart by their corners
    # alone, a handful of pixels that a plain MSE lets blur into discs.
    vae_edge_weight: float = 4.0
    # The decoder also learns from disturbed latents: white noise up to this share of the latents'
    # spread, and a 3x3 blur mixed in up to this share. See `disturb`.
    vae_latent_noise: float = 0.0
    vae_latent_blur: float = 0.0
    # The latents' side: 16 (the VAE halves 64 pixels twice) or 32 (once; shapes 5-10 latent pixels wide).
    vae_latent_size: int = 32
    text_steps: int = 700
    text_batch: int = 128
    text_lr: float = 2e-3
    unet_steps: int = 7_000
    # The channels of the UNet's 32x32 level (32x32 latents only): the level that draws corners.
    unet_top_channels: int = 16
    # Stop phase 3 after this many steps of the unet_steps schedule (0: run it all), to judge a
    # shorter run on the same learning-rate curve.
    unet_stop: int = 0
    batch: int = 32
    lr: float = 1e-3
    # The text encoder's learning rate in phase 3; 0 keeps it as phase 2 left it.
    encoder_lr: float = 0.0
    warmup: int = 100
    caption_dropout: float = 0.1
    snr_gamma: float = 5.0
    ema_decay: float = 0.999
    # Phase 4 (training.world.refine): this many steps from phase 3's UNet, 0 for none. The shipped
    # weights: 12,000 steps with a second resnet grown at the top level and the shape weight, no grown
    # attention (docs/benchmarks.md, "phase 4 shipped": squares 9 -> 19 of 69 at 3,000 steps, 32 at 9,000,
    # 39 at 12,000).
    refine_steps: int = 12000
    refine_lr: float = 4e-4
    refine_edge_weight: float = 4.0
    # Cross-attention grown into the 16x16 level first (the 32x32-latent UNet only).
    refine_grow: bool = False
    # A second resnet grown into the top (32x32) level first, down and up (training.world.refine.grow_top).
    refine_grow_top: bool = True
    # Extra loss weight where the picture would change if its squares were circles and its circles
    # squares (training.world.refine.shape_map): their rims and corners, not every edge of the picture.
    refine_shape_weight: float = 8.0
    # Phase 4, restarted (training.world.refine, a warm restart): this many more steps of phase 4's objective
    # from its UNet, on a fresh one-cycle curve peaking at `polish_lr`; 0 for none. Phase 4's squares were
    # still rising at 12,000 steps (32 of 69 at 9,000, 39 at 12,000); the shipped weights restarted it for
    # 6,000 (docs/benchmarks.md, "Phase 4 restarted": whole scenes 79 -> 81 held back, 75 -> 81 on a check set).
    polish_steps: int = 6000
    polish_lr: float = 2e-4
    # How many such restarts, each from the one before on a fresh curve of its own (1 before there was a choice).
    # The second still paid: on 400 scenes 81.3 -> 83.8% whole, squares 178 -> 199 of 280, chat edits 85.7 -> 88.6%
    # (docs/benchmarks.md, "A second restart"). Not a polish_ key: a round's stage depends on the rounds before
    # it, not on how many follow.
    restarts: int = 3
    # From restart round `squares_from` on, a scene is drawn for a batch with weight 1 + `squares_weight` x its
    # squares (0: every scene alike). After two rounds the squares were still the painter's weak shape (199 of
    # 254 right on 400 scenes, circles and triangles about 95%); a third round alike gave 5 more whole scenes,
    # squares unchanged, while this one (80% of its draws hold a square, 47% otherwise) took whole scenes 335 ->
    # 347 and squares 199 -> 211 (docs/benchmarks.md, "A third restart, squares drawn more often"). Not polish_
    # keys: the rounds before `squares_from` do not depend on them.
    squares_weight: float = 2.0
    squares_from: int = 3
    # Phase 5 (training.world.decoder): the VAE's decoder taught on this many of the painter's own redrawings
    # of fresh scenes, for this many steps (0: none). Redrawn as the world preset draws: 12 steps, guidance 2.
    decoder_pictures: int = 4000
    decoder_steps: int = 2000
    decoder_lr: float = 5e-4
    decoder_batch: int = 32
    decoder_sampling_steps: int = 12
    decoder_guidance: float = 2.0
    # One thread: the shipped weights were trained on one, and the thread count changes float sums.
    threads: int = 1
    log_every: int = 25
    checkpoint_every: int = 250


def caption_for(scene: Scene, rng: random.Random) -> str:
    """The exact caption half of the time, otherwise a paraphrase."""
    if rng.random() < 0.5:
        return scene.caption()
    return scene.paraphrases(rng, count=1)[0]


def one_cycle(optimiser: Any, lr: float, steps: int) -> Any:
    """A one-cycle learning rate over `steps` steps (at least 2, which the scheduler needs), 5% warm-up."""
    import torch

    return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=max(steps, 2), pct_start=0.05)


@dataclass(frozen=True)
class Denoising:
    """One batch through the UNet: the squared v-prediction error per latent pixel, and what was drawn."""

    error: Any  # (batch, channels, side, side)
    idx: Any  # the scenes' indices
    timesteps: Any


def denoising_batch(
    unet: Any, text_encoder: Any, tokenizer: Any, noise_scheduler: Any, scenes: list[Scene], latents_all: Any,
    scaling: float, config: TrainConfig, gen: Any, rng: random.Random, text_grad: bool = False, draws: Any = None,
) -> Denoising:  # fmt: skip
    """A random batch of scenes, captioned (some dropped), noised and predicted: phases 3 and 4 weigh its error.

    The generators are drawn in one fixed order (scenes, noise, timesteps; captions from `rng`), so a
    phase's run is the same whichever phase calls this. `draws`, one weight a scene, makes some scenes
    likelier than others (drawn with replacement); None draws every scene alike.
    """
    import torch

    if draws is None:
        idx = torch.randint(0, len(scenes), (config.batch,), generator=gen)
    else:
        idx = torch.multinomial(draws, config.batch, replacement=True, generator=gen)
    latents = latents_all[idx] * scaling
    captions = ["" if rng.random() < config.caption_dropout else caption_for(scenes[int(i)], rng) for i in idx]
    ids = token_ids(tokenizer, captions)
    noise = torch.randn(latents.shape, generator=gen)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (config.batch,), generator=gen)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    with torch.set_grad_enabled(text_grad):
        hidden = text_encoder(ids, return_dict=False)[0]
    pred = unet(noisy, timesteps, hidden, return_dict=False)[0]
    target = noise_scheduler.get_velocity(latents, noise, timesteps)
    return Denoising(error=(pred - target).pow(2), idx=idx, timesteps=timesteps)


def update(optimiser: Any, loss: Any, params: list[Any]) -> None:
    """One clipped optimiser step."""
    import torch

    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimiser.step()


def logs(step: int, last: int, config: TrainConfig) -> bool:
    """Whether this step goes on the loss curve: every `log_every` steps, and the last."""
    return step % config.log_every == 0 or step == last


def token_ids(tokenizer: Any, captions: list[str]) -> Any:
    """Captions as the pipeline feeds them to the encoder: padded to the tokenizer's length."""
    return tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def to_tensor(images: np.ndarray) -> Any:
    """Pictures (n, H, W, 3) uint8 as the VAE takes them: (n, 3, H, W) floats in -1..1."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def edge_weights(data: Any, weight: float) -> Any:
    """1 everywhere, 1 + `weight` on the pixels within one pixel of a colour edge."""
    import torch

    edges = torch.zeros_like(data[:, :1], dtype=torch.bool)
    dx = (data[:, :, :, 1:] - data[:, :, :, :-1]).abs().sum(1, keepdim=True) > 0
    dy = (data[:, :, 1:] - data[:, :, :-1]).abs().sum(1, keepdim=True) > 0
    edges[:, :, :, 1:] |= dx
    edges[:, :, :, :-1] |= dx
    edges[:, :, 1:] |= dy
    edges[:, :, :-1] |= dy
    return 1 + weight * torch.nn.functional.max_pool2d(edges.float(), 3, 1, 1)


def pixel_loss(error: Any, weights: Any) -> Any:
    """Phase 1's picture loss, which phase 5 shares: MSE + L1, each weighted per pixel (`edge_weights`)."""
    return (error.pow(2) * weights).mean() + (error.abs() * weights).mean()
