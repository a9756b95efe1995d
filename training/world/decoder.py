"""Phase 5 of the world's training: the VAE's decoder taught to finish the painter's own drawings.

After phase 4 the painter no longer draws its squares as circles but as rounded squares: on the held-back
captions their fill (area over bounding box) has a median of 0.91, its circles' 0.78, and a square is one
that fills 0.9 of its box (worker/world/reading.py). The decoder was taught in phase 1 on exact scenes'
latents only, so it draws whatever a latent says, rounded corners included. Here it is shown the latents
the painter itself makes, each paired with the exact picture it should have been: every scene is redrawn
by the whole pipeline from its own picture (img2img at strengths 0.6-0.95, so that the drawing stays in
register with the scene), and the decoder (with its post-quant convolution) learns to decode those
latents as that picture, with phase 1's edge-weighted loss. The encoder, the text encoder and the UNet
do not change, so every latent the UNet learned means what it meant.

Measured (docs/benchmarks.md, "phase 5"): 4,000 scenes redrawn and 2,000 steps, 10 min on two threads. On the
held-back captions shape 84.9 -> 89.1% (squares 39 -> 49 of 69) and whole scenes 71 -> 79 of 100; on 100 other
scenes 73 -> 75; chat edits right 80.0 -> 85.7%. Twice the scenes and 1.5 times the steps gave no more (80 and 77).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.world.scenes import Scene
from training.world.steps import TrainConfig, edge_weights, logs, one_cycle, pixel_loss, to_tensor, update

# img2img strengths the scenes are redrawn at, one per batch: from the painter's late, shape-setting steps
# (0.6) to nearly a whole drawing (0.95). At 1.0 nothing of the scene would remain to keep the drawing in
# register with its exact picture (the jitter of a shape's place is not in the caption).
STRENGTHS = (0.6, 0.7, 0.8, 0.9, 0.95)
REDRAW_BATCH = 50


@dataclass
class Tuned:
    """Phase 5's result: the VAE with its decoder tuned, its loss curve and the phase's time."""

    vae: Any
    curve: list[dict[str, float]]
    seconds: float


def redraw(
    vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scenes: list[Scene], images: np.ndarray, config: TrainConfig
) -> Any:
    """Each scene redrawn by the pipeline from its own picture: the painter's latents (unscaled), seeded."""
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline
    from PIL import Image
    from tqdm import tqdm

    from training.world.model import inference_scheduler

    pipe: Any = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=inference_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    rng = random.Random(config.seed + 13)
    drawn = []
    for start in tqdm(range(0, len(scenes), REDRAW_BATCH), desc="redraw", unit="batch"):
        chunk = scenes[start : start + REDRAW_BATCH]
        pictures = [Image.fromarray(a) for a in images[start : start + len(chunk)]]
        strength = rng.choice(STRENGTHS)
        generators = [torch.Generator().manual_seed(rng.getrandbits(63)) for _ in chunk]
        with torch.inference_mode():
            latents = pipe(
                prompt=[s.caption() for s in chunk], image=pictures,
                strength=strength, num_inference_steps=config.decoder_sampling_steps,
                guidance_scale=config.decoder_guidance, generator=generators, output_type="latent",
            ).images  # fmt: skip
        drawn.append(latents.clone() / vae.config.scaling_factor)
    return torch.cat(drawn)


def tune_decoder(
    vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scenes: list[Scene], config: TrainConfig
) -> Tuned:
    """Phase 5: `config.decoder_steps` steps of the decoder on the painter's redrawings of `scenes` (seeded)."""
    import torch
    from tqdm import tqdm

    began = time.perf_counter()
    images = np.stack([s.render() for s in scenes])
    latents = redraw(vae, text_encoder, tokenizer, unet, scenes, images, config)
    data = to_tensor(images)
    weights = edge_weights(data, config.vae_edge_weight)
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    vae.requires_grad_(False)
    for param in params:
        param.requires_grad_(True)
    optimiser = torch.optim.AdamW(params, lr=config.decoder_lr, weight_decay=0.0)
    schedule = one_cycle(optimiser, config.decoder_lr, config.decoder_steps)
    gen = torch.Generator().manual_seed(config.seed + 14)
    curve: list[dict[str, float]] = []
    bar = tqdm(range(config.decoder_steps), desc="decoder", unit="step")
    for step in bar:
        idx = torch.randint(0, len(data), (config.decoder_batch,), generator=gen)
        error = vae.decode(latents[idx]).sample - data[idx]
        loss = pixel_loss(error, weights[idx])
        update(optimiser, loss, params)
        schedule.step()
        if logs(step, config.decoder_steps - 1, config):
            curve.append({"step": step, "loss": round(loss.item(), 5)})
            bar.set_postfix(loss=f"{loss.item():.4f}")
    return Tuned(vae=vae.eval().requires_grad_(False), curve=curve, seconds=time.perf_counter() - began)
