"""Train the shape world's pipeline from nothing: `python -m worker.world.train --out DIR`.

Two phases, both seeded, with a progress bar each:
1. the VAE, as a deterministic autoencoder on whole rendered scenes, then its decoder alone on
   the frozen encoder's latents (SD's "ft-MSE" recipe: sharper edges, same latent space);
2. the UNet and the text encoder together, on cached latents, with SD1.5's noise schedule, the
   epsilon loss, min-SNR weighting and an EMA (diffusers' own training pieces), dropping 10% of
   captions so that classifier-free guidance works.
The result is a StableDiffusionPipeline folder plus `training.json` (the loss curve and timings).
Each phase is saved under `WORK/stage-*` with the settings it depends on, so that a rerun with
the same settings resumes after the phases it has (`--until decoder` stops after the autoencoder).
Every `--checkpoint-every` steps the EMA weights are also saved as whole pipelines under
`WORK/checkpoints/step-N`, so that a long run can be judged while it trains. WORK defaults to
`DIR.work`, next to DIR, so that the shipped folder holds only the pipeline.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.world.scenes import Scene, held_out_scenes, training_scenes


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the weights (with the code itself)."""

    seed: int = 0
    scenes: int = 6_000
    vae_steps: int = 800
    vae_batch: int = 4
    vae_lr: float = 1e-3
    decoder_steps: int = 800
    decoder_lr: float = 1e-3
    unet_steps: int = 1_200
    # Stop phase 2 after this many steps of the unet_steps schedule (0: run it all). The shipped
    # weights stop early: on the shared 2-core machine the whole schedule did not fit the time.
    unet_stop: int = 600
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 100
    caption_dropout: float = 0.1
    snr_gamma: float = 5.0
    ema_decay: float = 0.999
    threads: int = 1
    log_every: int = 25
    checkpoint_every: int = 300


def _to_tensor(images: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _caption(scene: Scene, rng: random.Random) -> str:
    """The exact caption half of the time, otherwise a paraphrase."""
    if rng.random() < 0.5:
        return scene.caption()
    return scene.paraphrases(rng, count=1)[0]


def _update(optimiser: Any, loss: Any, log: tuple[list[dict[str, float]], Any] | None, step: int, mse: Any) -> None:
    """One optimiser step; with `log` (the curve and the bar), a point on the curve."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    if log is not None:
        log[0].append({"step": step, "mse": round(mse.item(), 5)})
        log[1].set_postfix(mse=f"{mse.item():.4f}")


def _logs(step: int, last: int, config: TrainConfig) -> bool:
    return step % config.log_every == 0 or step == last


def train_vae(images: np.ndarray, config: TrainConfig, curve: list[dict[str, float]]) -> Any:
    """Phase 1: reconstruct scenes (MSE + a small KL, as SD's VAE)."""
    import torch
    from tqdm import tqdm

    from worker.world.model import build_vae

    gen = torch.Generator().manual_seed(config.seed)
    vae = build_vae()
    optimiser = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    data = _to_tensor(images)
    bar = tqdm(range(config.vae_steps), desc="vae", unit="step")
    for step in bar:
        batch = data[torch.randint(0, len(data), (config.vae_batch,), generator=gen)]
        posterior = vae.encode(batch).latent_dist
        # The posterior's mean, not a sample: a deterministic autoencoder learns edges in far fewer
        # steps, and phase 2 trains on the same means.
        recon = vae.decode(posterior.mode()).sample
        mse = torch.nn.functional.mse_loss(recon, batch)
        loss = mse + 1e-6 * posterior.kl().mean()
        _update(optimiser, loss, (curve, bar) if _logs(step, config.vae_steps - 1, config) else None, step, mse)
    return vae.eval().requires_grad_(False)


def finetune_decoder(
    vae: Any, latents: Any, images: np.ndarray, config: TrainConfig, curve: list[dict[str, float]]
) -> Any:
    """Phase 1b: the decoder alone, from the frozen encoder's latents back to the scenes (MSE + L1)."""
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(config.seed + 3)
    parts = [vae.post_quant_conv, vae.decoder]
    params = [p for part in parts for p in part.parameters()]
    for p in params:
        p.requires_grad_(True)
    vae.decoder.train()
    optimiser = torch.optim.AdamW(params, lr=config.decoder_lr, weight_decay=0.0)
    data = _to_tensor(images)
    bar = tqdm(range(config.decoder_steps), desc="decoder", unit="step")
    for step in bar:
        idx = torch.randint(0, len(data), (config.vae_batch,), generator=gen)
        recon = vae.decode(latents[idx]).sample
        mse = torch.nn.functional.mse_loss(recon, data[idx])
        loss = mse + torch.nn.functional.l1_loss(recon, data[idx])
        _update(optimiser, loss, (curve, bar) if _logs(step, config.decoder_steps - 1, config) else None, step, mse)
    return vae.eval().requires_grad_(False)


def encode_all(vae: Any, images: np.ndarray) -> Any:
    """Every scene's latent (the posterior's mean), once, so that phase 2 never runs the encoder."""
    import torch
    from tqdm import tqdm

    means = []
    with torch.no_grad():
        for start in tqdm(range(0, len(images), 256), desc="encode", unit="batch"):
            means.append(vae.encode(_to_tensor(images[start : start + 256])).latent_dist.mean)
    return torch.cat(means)


def train_denoiser(
    scenes: list[Scene],
    latents_all: Any,
    scaling: float,
    tokenizer: Any,
    config: TrainConfig,
    curve: list[dict[str, float]],
    checkpoint: Any = None,
) -> tuple[Any, Any]:
    """Phase 2: the UNet and the text encoder, on noised latents (epsilon loss, min-SNR weights, EMA)."""
    import torch
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel, compute_snr
    from tqdm import tqdm

    from worker.world.model import build_text_encoder, build_unet, training_scheduler

    gen = torch.Generator().manual_seed(config.seed + 1)
    rng = random.Random(config.seed + 2)
    unet, text_encoder = build_unet(), build_text_encoder(len(tokenizer))
    noise_scheduler = training_scheduler()
    params = [*unet.parameters(), *text_encoder.parameters()]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-2)
    schedule = get_scheduler("cosine", optimiser, num_warmup_steps=config.warmup, num_training_steps=config.unet_steps)
    ema_unet = EMAModel(unet.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=2 / 3)
    ema_text = EMAModel(text_encoder.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=2 / 3)
    bar = tqdm(range(config.unet_steps), desc="unet", unit="step")
    for step in bar:
        idx = torch.randint(0, len(scenes), (config.batch,), generator=gen)
        latents = latents_all[idx] * scaling
        captions = ["" if rng.random() < config.caption_dropout else _caption(scenes[int(i)], rng) for i in idx]
        ids = tokenizer(
            captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (config.batch,), generator=gen)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        hidden = text_encoder(ids, return_dict=False)[0]
        pred = unet(noisy, timesteps, hidden, return_dict=False)[0]
        snr = compute_snr(noise_scheduler, timesteps)
        weights = torch.clamp(snr, max=config.snr_gamma) / snr
        per_sample = torch.nn.functional.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * weights).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        ema_unet.step(unet.parameters())
        ema_text.step(text_encoder.parameters())
        if step % config.log_every == 0 or step == config.unet_steps - 1:
            curve.append({"step": step, "loss": round(loss.item(), 5), "mse": round(per_sample.mean().item(), 5)})
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if checkpoint is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            snapshot_unet, snapshot_text = copy.deepcopy(unet), copy.deepcopy(text_encoder)
            ema_unet.copy_to(snapshot_unet.parameters())
            ema_text.copy_to(snapshot_text.parameters())
            checkpoint(step + 1, snapshot_unet.eval(), snapshot_text.eval())
        if step + 1 == config.unet_stop:
            break
    ema_unet.copy_to(unet.parameters())
    ema_text.copy_to(text_encoder.parameters())
    return unet.eval(), text_encoder.eval()


def train(out: Path, config: TrainConfig, work: Path | None = None, until: str = "unet") -> dict[str, Any]:
    """Run both phases and save the pipeline (fp16 weights) and its training record into `out`."""
    import torch

    from worker.world.model import save_pipeline, world_tokenizer

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    exclude = {s.key for s in held_out_scenes()}
    scenes = training_scenes(config.scenes, config.seed, exclude)
    images = np.stack([s.render() for s in scenes])
    setup_s = time.perf_counter() - started
    work = work or out.with_name(out.name + ".work")
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from worker.world.model import build_vae

    fields = asdict(config)
    seconds: dict[str, float] = {}

    def stage(name: str, keys: tuple[str, ...]) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
        folder = work / f"stage-{name}"
        wanted = {k: v for k, v in fields.items() if k in ("seed", "scenes") or k.startswith(keys)}
        found = json.loads((folder / "stage.json").read_text()) if (folder / "stage.json").exists() else None
        return folder, wanted, found if found is not None and found["config"] == wanted else None

    def finish(folder: Path, wanted: dict[str, Any], curve: list[dict[str, float]], began: float) -> float:
        took = time.perf_counter() - began
        (folder / "stage.json").write_text(json.dumps({"config": wanted, "curve": curve, "seconds": took}))
        return took

    folder, wanted, found = stage("vae", ("vae",))
    if found:
        # Building it draws the same random numbers a fresh run does, so the UNet starts identically.
        vae = build_vae()
        vae.load_state_dict(AutoencoderKL.from_pretrained(folder).state_dict())
        vae = vae.eval().requires_grad_(False)
        vae_curve, seconds["vae"] = found["curve"], found["seconds"]
    else:
        began, vae_curve = time.perf_counter(), []
        vae = train_vae(images, config, vae_curve)
        vae.save_pretrained(folder)
        seconds["vae"] = finish(folder, wanted, vae_curve, began)
    began = time.perf_counter()
    latents = encode_all(vae, images)
    seconds["encode"] = time.perf_counter() - began
    # SD's latent scaling factor: unit-variance latents for the noise schedule.
    scaling = float(1.0 / latents.std())

    folder, wanted, found = stage("decoder", ("vae", "decoder"))
    if found:
        vae.load_state_dict(AutoencoderKL.from_pretrained(folder).state_dict())
        decoder_curve, seconds["decoder"] = found["curve"], found["seconds"]
    else:
        began, decoder_curve = time.perf_counter(), []
        vae = finetune_decoder(vae, latents, images, config, decoder_curve)
        vae.save_pretrained(folder)
        seconds["decoder"] = finish(folder, wanted, decoder_curve, began)
    vae.register_to_config(scaling_factor=scaling)
    if until == "decoder":
        return {"seconds": seconds}
    tokenizer = world_tokenizer()

    def save(folder: Path, unet: Any, text_encoder: Any) -> None:
        # fp16 on disk halves the download; loading casts back to the worker's dtype.
        parts = [copy.deepcopy(m).to(torch.float16) for m in (vae, text_encoder, unet)]
        save_pipeline(folder, parts[0], parts[1], tokenizer, parts[2])

    folder, wanted, found = stage("unet", ("vae", "unet", "batch", "lr", "warmup", "caption", "snr", "ema"))
    if found:
        unet = UNet2DConditionModel.from_pretrained(folder / "unet").eval()
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").eval()
        unet_curve, seconds["unet"] = found["curve"], found["seconds"]
    else:
        began, unet_curve = time.perf_counter(), []
        unet, text_encoder = train_denoiser(
            scenes, latents, scaling, tokenizer, config, unet_curve,
            checkpoint=lambda step, u, t: save(work / "checkpoints" / f"step-{step}", u, t),
        )  # fmt: skip
        unet.save_pretrained(folder / "unet")
        text_encoder.save_pretrained(folder / "text_encoder")
        seconds["unet"] = finish(folder, wanted, unet_curve, began)
    save(out, unet, text_encoder)
    record = {
        "config": fields,
        "torch": torch.__version__,
        "threads": config.threads,
        # Each phase's own time (a resumed run reports the times of the run that did the work).
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_seconds": round(sum(seconds.values()) + setup_s, 1),
        "scaling_factor": scaling,
        "vae_curve": vae_curve,
        "decoder_curve": decoder_curve,
        "unet_curve": unet_curve,
    }
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    """The training command."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the pipeline into")
    parser.add_argument("--work", type=Path, help="folder for the stages and checkpoints (default: OUT.work)")
    parser.add_argument("--until", choices=["decoder", "unet"], default="unet", help="the last phase to run")
    for field, value in asdict(defaults).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    out, work, until = args.pop("out"), args.pop("work"), args.pop("until")
    record = train(out, TrainConfig(**args), work, until)
    print(f"phases took {record['seconds']}; saved to {out if until == 'unet' else work or out.name + '.work'}")


if __name__ == "__main__":
    main()
