"""Phase 3 of the world's training: the UNet on noised latents, resumable from its last checkpoint.

Zero-terminal-SNR noise with v-prediction, min-SNR weights and an EMA (diffusers' own training
pieces), 10% of captions dropped so that classifier-free guidance works. Every `checkpoint_every`
steps the whole training state (weights, EMA, optimiser, schedule, random generators, loss curve)
is saved next to the checkpoint pipeline, so that a stopped run continues where it stopped and
ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.world.scenes import Scene
from training.world.steps import TrainConfig, denoising_batch, update

# A pipeline snapshot to save: (step, UNet with the EMA weights, text encoder).
Checkpoint = Callable[[int, Any, Any], None]


@dataclass
class Denoised:
    """Phase 3's result: the EMA weights, the loss curve and the phase's time (across resumed runs)."""

    unet: Any
    text_encoder: Any
    curve: list[dict[str, float]]
    seconds: float


def train_denoiser(
    scenes: list[Scene],
    latents_all: Any,
    scaling: float,
    tokenizer: Any,
    text_encoder: Any,
    config: TrainConfig,
    checkpoint: Checkpoint | None = None,
    state_file: Path | None = None,
    settings: dict[str, Any] | None = None,
) -> Denoised:
    """Phase 3: the UNet (and the encoder, if encoder_lr), resumed from `state_file` when it holds these `settings`.

    `settings` are the config fields the phase's result depends on; where it stops (`unet_stop`)
    is not one of them, so a run stopped early continues on the same schedule.
    """
    import torch
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel, compute_snr
    from tqdm import tqdm

    from training.world.model import build_unet, training_scheduler

    began = time.perf_counter()
    resumable = {k: v for k, v in (settings or {}).items() if k != "unet_stop"}
    gen = torch.Generator().manual_seed(config.seed + 1)
    rng = random.Random(config.seed + 2)
    torch.manual_seed(config.seed + 7)
    unet = build_unet(latents_all.shape[-1], config.unet_top_channels)
    noise_scheduler = training_scheduler()
    text_trains = config.encoder_lr > 0
    text_encoder.requires_grad_(text_trains)
    text_params = list(text_encoder.parameters()) if text_trains else []
    params = [*unet.parameters(), *text_params]
    groups: list[dict[str, Any]] = [{"params": list(unet.parameters()), "lr": config.lr}]
    if text_trains:
        groups.append({"params": text_params, "lr": config.encoder_lr})
    optimiser = torch.optim.AdamW(groups, lr=config.lr, weight_decay=1e-2)
    schedule = get_scheduler("cosine", optimiser, num_warmup_steps=config.warmup, num_training_steps=config.unet_steps)
    ema_unet = EMAModel(unet.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=2 / 3)
    # The encoder's EMA only when it trains: a fixed encoder is already its own average.
    ema_text = EMAModel(text_params, decay=config.ema_decay, use_ema_warmup=True, power=2 / 3) if text_trains else None
    parts: dict[str, Any] = {"unet": unet, "optimiser": optimiser, "schedule": schedule, "ema_unet": ema_unet}
    if text_trains:
        parts |= {"text_encoder": text_encoder, "ema_text": ema_text}
    start, curve, spent = 0, [], 0.0
    if state_file is not None and state_file.exists():
        state = torch.load(state_file, weights_only=False)
        if state["settings"] == resumable:
            for name, part in parts.items():
                part.load_state_dict(state[name])
            gen.set_state(state["generator"])
            rng.setstate(state["random"])
            start, curve, spent = state["step"], state["curve"], state["seconds"]
    # Where this run stops: `unet_stop` (a run resumed at or past it takes no step) or the schedule's end.
    last = min(config.unet_stop or config.unet_steps, config.unet_steps)
    bar = tqdm(range(start, last), desc="unet", unit="step", initial=start, total=config.unet_steps)
    for step in bar:
        batch = denoising_batch(unet, text_encoder, tokenizer, noise_scheduler, scenes, latents_all, scaling, config,
                                gen, rng, text_grad=text_trains)  # fmt: skip
        # Min-SNR weighting in its v-prediction form (diffusers' train_text_to_image): SNR + 1, so
        # that the pure-noise step (SNR 0), where the caption alone decides, keeps its full weight.
        snr = compute_snr(noise_scheduler, batch.timesteps) + 1
        weights = torch.clamp(snr, max=config.snr_gamma) / snr
        per_sample = batch.error.mean(dim=(1, 2, 3))
        loss = (per_sample * weights).mean()
        update(optimiser, loss, params)
        schedule.step()
        ema_unet.step(unet.parameters())
        if ema_text is not None:
            ema_text.step(text_encoder.parameters())
        if step % config.log_every == 0 or step == config.unet_steps - 1:
            curve.append({"step": step, "loss": round(loss.item(), 5), "mse": round(per_sample.mean().item(), 5)})
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            if checkpoint is not None:
                snapshot_unet, snapshot_text = copy.deepcopy(unet), copy.deepcopy(text_encoder)
                ema_unet.copy_to(snapshot_unet.parameters())
                if ema_text is not None:
                    ema_text.copy_to(snapshot_text.parameters())
                checkpoint(step + 1, snapshot_unet.eval(), snapshot_text.eval())
            if state_file is not None:
                state = {name: part.state_dict() for name, part in parts.items()}
                state |= {"settings": resumable, "step": step + 1, "curve": curve, "generator": gen.get_state(),
                          "random": rng.getstate(), "seconds": spent + time.perf_counter() - began}  # fmt: skip
                state_file.parent.mkdir(parents=True, exist_ok=True)
                partial = state_file.with_suffix(".part")
                torch.save(state, partial)
                partial.replace(state_file)  # never a half-written state
    ema_unet.copy_to(unet.parameters())
    if ema_text is not None:
        ema_text.copy_to(text_encoder.parameters())
    return Denoised(
        unet=unet.eval(),
        text_encoder=text_encoder.eval().requires_grad_(False),
        curve=curve,
        seconds=spent + time.perf_counter() - began,
    )
