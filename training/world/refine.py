"""Phase 4 of the world's training: the UNet refined where squares and circles differ.

After phase 3 the painter drew circles and triangles but rounded nearly every square: the corners that
tell a square from a circle are a few latent pixels, and its top (32x32) level, one 16-channel resnet a
side, rounds them even at low noise. This phase fine-tunes phase 3's UNet with every noise level weighted
alike (min-SNR all but ignores the low-noise steps, where edges sharpen), the loss weighted up at the
shapes' edges and, more, where a square and a circle in the same place would differ (`shape_map`). It can
first grow the UNet where it is short: a second resnet at the top level (`grow_top`, the shipped
weights) or cross-attention at the 16x16 level (`grow_attention`, tried); both start computing exactly
what phase 3 left. Measured (docs/benchmarks.md): the top grown and shape weight 8 took squares from 9
to 19 of 69 and shape from 65.6% to 70.8% in 3,000 steps, to 32 of 69 and 80.7% in 9,000, and to 39 of 69
and 84.9% in 12,000; the weights alone or grown attention moved squares by at most four. A restart of
the phase from where it ended (`restart`: 6,000 steps on a fresh cycle at half the rate) took whole
scenes from 79 to 81 of 100 held back and from 75 to 81 on a check set once phase 5 ran again (sampled
with DPM-Solver++); a second restart from the first took them from 81.3% to 83.8% of 400 scenes (the 100 held back, the
check set and 200 fresh ones, sampled with UniPC as the preset samples); a third alike gained 5 scenes
and no squares, while a third that draws scenes with squares more often (shipped: `--restarts 3`,
`square_draws`) took them to 86.8% and squares from 199 to 211 of 254.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from training.world.scenes import SIZE, Scene, shape_mask
from training.world.steps import TrainConfig, denoising_batch, edge_weights, logs, one_cycle, to_tensor, update

# The down and up blocks of the 16x16 level in the 32x32-latent UNet (training.world.model.build_unet).
GROWN_DOWN, GROWN_UP = 1, 2


@dataclass
class Refined:
    """Phase 4's result: the UNet (EMA weights), its loss curve and the phase's time."""

    unet: Any
    curve: list[dict[str, float]]
    seconds: float


def grow_attention(unet: Any) -> Any:
    """The same UNet with cross-attention at the 16x16 level too, computing exactly what `unet` computes.

    The new blocks' output projections start at zero, so each adds nothing until it learns to;
    every other weight is carried over by name (the block indices do not change).
    """
    import torch
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    down, up = list(config["down_block_types"]), list(config["up_block_types"])
    down[GROWN_DOWN], up[GROWN_UP] = "CrossAttnDownBlock2D", "CrossAttnUpBlock2D"
    grown = UNet2DConditionModel.from_config({**config, "down_block_types": down, "up_block_types": up})
    _, unexpected = grown.load_state_dict(unet.state_dict(), strict=False)
    if unexpected:
        raise ValueError(f"phase 3's UNet has weights the grown one lacks: {unexpected[:3]}")
    with torch.no_grad():
        for block in (grown.down_blocks[GROWN_DOWN], grown.up_blocks[GROWN_UP]):
            for attention in block.attentions:
                attention.proj_out.weight.zero_()
                attention.proj_out.bias.zero_()
    return grown


def grow_top(unet: Any) -> Any:
    """The same UNet with a second resnet at its top (32x32) level, down and up, computing what `unet` computes.

    The squares' corners are lost there even at low noise (docs/notes.md): one 16-channel resnet a side.
    The new down resnet adds nothing at first (its last convolution starts at zero). Its output is one
    more skip connection, so the up side gets one more resnet too: placed between the two it had, it
    starts by passing its input through (a shortcut that keeps the upward features and drops the
    skip) and adding nothing, and the old ones see exactly the skips they saw before.
    """
    import torch
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    levels = len(config["block_out_channels"])
    if config["layers_per_block"] != 1:
        raise ValueError("only a UNet with one resnet a block grows this way")
    grown = UNet2DConditionModel.from_config({**config, "layers_per_block": (2, *[1] * (levels - 1))})
    top = f"up_blocks.{levels - 1}.resnets."
    moved = {
        (top + "2." + k[len(top) + 2 :] if k.startswith(top + "1.") else k): v for k, v in unet.state_dict().items()
    }
    missing, unexpected = grown.load_state_dict(moved, strict=False)
    new = {"down_blocks.0.resnets.1.", top + "1."}
    if unexpected or any(not k.startswith(tuple(new)) for k in missing):
        raise ValueError(f"the grown UNet does not match phase 3's: {unexpected[:3]} {missing[:3]}")
    with torch.no_grad():
        for resnet in (grown.down_blocks[0].resnets[1], grown.up_blocks[-1].resnets[1]):
            resnet.conv2.weight.zero_()
            resnet.conv2.bias.zero_()
        shortcut = grown.up_blocks[-1].resnets[1].conv_shortcut
        width = shortcut.weight.shape[0]
        shortcut.weight.zero_()
        shortcut.bias.zero_()
        shortcut.weight[:, :width, 0, 0] = torch.eye(width)  # the upward features first, the skip after
    return grown


def edge_map(images: np.ndarray, weight: float, latent_size: int) -> Any:
    """Per-latent-pixel loss weights: 1, and 1 + `weight` where a colour edge of the picture falls.

    In chunks: all 12,000 scenes as float pictures at once would take 600 MB.
    """
    import torch

    maps = []
    for start in range(0, len(images), 1000):
        edges = edge_weights(to_tensor(images[start : start + 1000]), 1.0) - 1  # 1 within a pixel of an edge
        maps.append(1 + weight * torch.nn.functional.adaptive_max_pool2d(edges, latent_size))
    return torch.cat(maps)


SWAPPED = {"square": "circle", "circle": "square"}


def shape_map(scenes: list[Scene], weight: float, latent_size: int) -> Any:
    """Per-latent-pixel extra loss weights: `weight` where a square of the scene would differ from a
    circle in its place, and a circle from a square (their corners), else 0."""
    import torch

    differs = np.zeros((len(scenes), 1, SIZE, SIZE), dtype=np.float32)
    for n, scene in enumerate(scenes):
        for shape in scene.shapes:
            if shape.shape in SWAPPED:
                differs[n, 0] += shape_mask(shape) ^ shape_mask(replace(shape, shape=SWAPPED[shape.shape]))
    pooled = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(np.minimum(differs, 1)), latent_size)
    return weight * pooled


def squares_round(config: TrainConfig, restart: int) -> bool:
    """Whether restart round `restart` (0: phase 4 itself) draws scenes with squares more often."""
    return bool(config.squares_weight) and restart >= max(config.squares_from, 1)


def square_draws(scenes: list[Scene], weight: float) -> Any:
    """Each scene's weight in a batch's draw: 1 + `weight` x its squares (float64, as torch.multinomial takes it)."""
    import torch

    return torch.tensor([1 + weight * sum(s.shape == "square" for s in scene.shapes) for scene in scenes],
                        dtype=torch.float64)  # fmt: skip


def refine_denoiser(
    scenes: list[Scene], latents_all: Any, scaling: float, images: np.ndarray, tokenizer: Any, text_encoder: Any,
    unet: Any, config: TrainConfig, restart: int = 0,
) -> Refined:  # fmt: skip
    """Phase 4: `config.refine_steps` steps from phase 3's UNet (seeded; the encoder stays fixed).

    With `restart` r (1, 2...), phase 4 again from the UNet before it: `config.polish_steps` steps on a fresh
    learning-rate cycle peaking at `config.polish_lr`, with generators of each round's own and nothing grown;
    from round `config.squares_from` on, scenes with squares drawn more often (`square_draws`).
    """
    import torch
    from diffusers.training_utils import EMAModel
    from tqdm import tqdm

    from training.world.model import training_scheduler

    began = time.perf_counter()
    steps, lr = (config.polish_steps, config.polish_lr) if restart else (config.refine_steps, config.refine_lr)
    # The first restart kept the seeds it shipped with (16, 17); later rounds take 20, 21, then 22, 23...
    offset = 11 if not restart else 16 if restart == 1 else 20 + 2 * (restart - 2)
    gen = torch.Generator().manual_seed(config.seed + offset)
    rng = random.Random(config.seed + offset + 1)
    if not restart:
        unet = grow_attention(unet) if config.refine_grow else unet
        unet = grow_top(unet) if config.refine_grow_top else unet
    unet = unet.train().requires_grad_(True)
    text_encoder.requires_grad_(False)
    weights_all = edge_map(images, config.refine_edge_weight, latents_all.shape[-1])
    if config.refine_shape_weight:
        weights_all = weights_all + shape_map(scenes, config.refine_shape_weight, latents_all.shape[-1])
    noise_scheduler = training_scheduler()
    draws = square_draws(scenes, config.squares_weight) if squares_round(config, restart) else None
    params = list(unet.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    schedule = one_cycle(optimiser, lr, steps)
    ema = EMAModel(params, decay=config.ema_decay, use_ema_warmup=True, power=2 / 3)
    curve: list[dict[str, float]] = []
    bar = tqdm(range(steps), desc="polish" if restart else "refine", unit="step")
    for step in bar:
        batch = denoising_batch(unet, text_encoder, tokenizer, noise_scheduler, scenes, latents_all, scaling, config,
                                gen, rng, draws=draws)  # fmt: skip
        loss = (batch.error * weights_all[batch.idx]).mean()
        update(optimiser, loss, params)
        schedule.step()
        ema.step(params)
        if logs(step, steps - 1, config):
            curve.append({"step": step, "loss": round(loss.item(), 5)})
            bar.set_postfix(loss=f"{loss.item():.4f}")
    ema.copy_to(params)
    return Refined(unet=unet.eval().requires_grad_(False), curve=curve, seconds=time.perf_counter() - began)
