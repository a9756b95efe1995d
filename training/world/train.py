"""Train the shape world's pipeline from nothing: `python -m training.world.train --out DIR`.

Longer than most modules on purpose: one seeded, resumable run whose phases share their settings.

Five phases (the last two optional), all seeded, with a progress bar each:
1. the VAE, as a deterministic autoencoder on whole rendered scenes (MSE + L1, edges weighted up);
2. the text encoder alone, taught through a throw-away reader to say which object each of the nine
   cells holds and what the background is, from captions and paraphrases of fresh random scenes;
3. the UNet, with the encoder fixed, on cached latents, with SD1.5's noise schedule rescaled to
   zero terminal SNR, SD 2's v-prediction loss, min-SNR weighting and an EMA (diffusers' own
   training pieces), dropping 10% of captions so that classifier-free guidance works;
4. the UNet refined where squares and circles differ (`--refine-steps`, 12,000 by default, 0 to skip):
   a second resnet grown into its top level, every noise level alike, and the loss weighted up at
   shapes' edges and corners (training/world/refine.py), then restarted on a fresh learning-rate cycle
   from where it ended (`--polish-steps`, 6,000 by default, 0 to skip), and again from there
   (`--restarts`, 3 by default: each round its own stage, `WORK/stage-polish`, `WORK/stage-polish-2`...;
   from the third on, scenes with squares are drawn more often: `--squares-weight`, `--squares-from`);
5. the VAE's decoder taught to finish the painter's own drawings (`--decoder-steps`, 2,000 by default, 0
   to skip): fresh scenes redrawn by the pipeline from their own pictures, each decoded towards its exact
   picture (training/world/decoder.py).
The result is a StableDiffusionPipeline folder plus `training.json` (the loss curve and timings).
`--phases-from DIR` takes phases 1-3 from a folder the command wrote with `--refine-steps 0 --decoder-steps 0` and runs
phases 4 and 5 alone (training/world/stages.py).
Each phase is saved under `WORK/stage-*` with the settings it depends on, so that a rerun with
the same settings resumes after the phases it has (`--until vae` or `--until text` stops early).
Every `--checkpoint-every` steps the EMA weights are also saved as whole pipelines under
`WORK/checkpoints/step-N`, so that a long run can be judged while it trains, and the UNet phase's
whole state beside them, so that a stopped run resumes from its last checkpoint (training/world/
denoiser.py). WORK defaults to `DIR.work`, next to DIR, so that the shipped folder holds only the
pipeline.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from training.world.model import TEXT_WIDTH
from training.world.scenes import (
    BACKGROUNDS,
    GRID,
    OBJECT_COLOURS,
    SHAPES,
    SIZES,
    Scene,
    held_out_scenes,
    sample_scene,
    training_scenes,
)
from training.world.stages import TEXT_KEYS, UNET_KEYS, VAE_KEYS, PhasesError, seed_stages, settings, stage_record
from training.world.steps import (
    TrainConfig,
    caption_for,
    edge_weights,
    logs,
    one_cycle,
    pixel_loss,
    to_tensor,
    token_ids,
    update,
)


def disturb(latents: Any, noise: float, blur: float, gen: Any) -> Any:
    """The latents with per-picture random white noise (up to `noise` x their spread) and 3x3 blur (up to `blur`).

    A denoiser trained with MSE predicts averages, and an average is smoother than any one latent:
    the first VAE kept shape in its latents' finest grain (a 3x3 blur of true latents cut the
    shapes read right from 99% to 55%), so the UNet's near-misses decoded as blobs. Decoding
    disturbed latents makes the encoder carry shape in a form that survives them.
    """
    import torch

    n = latents.shape[0]
    channels = latents.shape[1]
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    padded = torch.nn.functional.pad(latents, (1, 1, 1, 1), mode="replicate")
    blurred = torch.nn.functional.conv2d(padded, kernel.expand(channels, 1, 3, 3), groups=channels)
    mix = blur * torch.rand((n, 1, 1, 1), generator=gen)
    sigma = noise * torch.rand((n, 1, 1, 1), generator=gen) * latents.detach().std()
    return (1 - mix) * latents + mix * blurred + sigma * torch.randn(latents.shape, generator=gen)


def train_vae(images: np.ndarray, config: TrainConfig, curve: list[dict[str, float]]) -> Any:
    """Phase 1: reconstruct scenes, MSE + L1 with the edges weighted up (and a small KL, as SD's VAE)."""
    import torch
    from tqdm import tqdm

    from training.world.model import build_vae

    gen = torch.Generator().manual_seed(config.seed)
    vae = build_vae(config.vae_latent_size)
    params = list(vae.parameters())
    optimiser = torch.optim.AdamW(params, lr=config.vae_lr, weight_decay=0.0)
    schedule = one_cycle(optimiser, config.vae_lr, config.vae_steps)
    data = to_tensor(images)
    weights = edge_weights(data, config.vae_edge_weight)
    bar = tqdm(range(config.vae_steps), desc="vae", unit="step")
    for step in bar:
        idx = torch.randint(0, len(data), (config.vae_batch,), generator=gen)
        batch, w = data[idx], weights[idx]
        posterior = vae.encode(batch).latent_dist
        # The posterior's mean, not a sample: a deterministic autoencoder learns edges in far fewer
        # steps, and phase 3 trains on the same means.
        latents = posterior.mode()
        if config.vae_latent_noise or config.vae_latent_blur:
            latents = disturb(latents, config.vae_latent_noise, config.vae_latent_blur, gen)
        error = vae.decode(latents).sample - batch
        loss = pixel_loss(error, w) + 1e-6 * posterior.kl().mean()
        update(optimiser, loss, params)
        schedule.step()
        if logs(step, config.vae_steps - 1, config):
            mse = error.pow(2).mean().item()
            curve.append({"step": step, "mse": round(mse, 5)})
            bar.set_postfix(mse=f"{mse:.4f}")
    return vae.eval().requires_grad_(False)


def encode_all(vae: Any, images: np.ndarray) -> Any:
    """Every scene's latent (the posterior's mean), once, so that phase 3 never runs the encoder."""
    import torch
    from tqdm import tqdm

    means = []
    with torch.no_grad():
        for start in tqdm(range(0, len(images), 500), desc="encode", unit="batch"):
            means.append(vae.encode(to_tensor(images[start : start + 500])).latent_dist.mean)
    return torch.cat(means)


CELLS = GRID * GRID
# A cell holds nothing (0) or one object: 5 colours x 3 shapes x 2 sizes.
CELL_CLASSES = 1 + len(OBJECT_COLOURS) * len(SHAPES) * len(SIZES)


def scene_targets(scene: Scene) -> tuple[list[int], int]:
    """What a caption says, as labels: each cell's object class (0: empty) and the background."""
    cells = [0] * CELLS
    for s in scene.shapes:
        index = (OBJECT_COLOURS.index(s.colour) * len(SHAPES) + SHAPES.index(s.shape)) * len(SIZES)
        cells[s.cell[0] * GRID + s.cell[1]] = 1 + index + SIZES.index(s.size)
    return cells, BACKGROUNDS.index(scene.background)


def _slot_reader(width: int) -> Any:
    """Ten learned queries (nine cells and the background) attending over the encoder's tokens.

    It reads the caption the way the UNet's cross-attention will: a place asks what the tokens say
    about it. Training the encoder through it lays each object's colour, shape and size out where
    a query for its cell finds them; the reader itself is thrown away.
    """
    import torch
    from torch import nn

    class SlotReader(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.queries = nn.Parameter(torch.randn(CELLS + 1, width) * 0.5)
            self.attention = nn.MultiheadAttention(width, 4, batch_first=True)
            self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU())
            self.cell = nn.Linear(2 * width, CELL_CLASSES)
            self.background = nn.Linear(2 * width, len(BACKGROUNDS))

        def forward(self, hidden: Any) -> tuple[Any, Any]:
            read, _ = self.attention(self.queries.expand(hidden.shape[0], -1, -1), hidden, hidden)
            read = self.mlp(read)
            return self.cell(read[:, :-1]), self.background(read[:, -1])

    return SlotReader()


def _caption_pool(tokenizer: Any, count: int, seed: int, exclude: set[tuple[object, ...]]) -> tuple[Any, Any, Any]:
    """`count` captions of fresh random scenes (never a held-back one): token ids, cell and background labels."""
    import torch

    rng = random.Random(seed)
    captions: list[str] = []
    cells: list[list[int]] = []
    backgrounds: list[int] = []
    while len(captions) < count:
        scene = sample_scene(rng)
        if scene.key in exclude:
            continue
        captions.append(caption_for(scene, rng))
        c, b = scene_targets(scene)
        cells.append(c)
        backgrounds.append(b)
    return token_ids(tokenizer, captions), torch.tensor(cells), torch.tensor(backgrounds)


def train_text(tokenizer: Any, config: TrainConfig, curve: list[dict[str, float]]) -> Any:
    """Phase 2: the text encoder alone, taught to say which object each cell holds (cross-entropy).

    Trained jointly with the UNet from nothing, the encoder collapsed: two captions' outputs grew
    closer than at random initialisation, and the UNet learned to draw without reading them. Here
    it learns the caption's layout first, in a minute, from text alone; phase 3 keeps it fixed.
    """
    import torch
    from tqdm import tqdm

    from training.world.model import build_text_encoder

    torch.manual_seed(config.seed + 4)
    encoder, reader = build_text_encoder(len(tokenizer)), _slot_reader(TEXT_WIDTH)
    exclude = {s.key for s in held_out_scenes()}
    # Up to 30k captions, tokenised once (fewer for a short run, whose steps would not reach them all).
    pool = min(30_000, config.text_steps * config.text_batch)
    ids, cells, backgrounds = _caption_pool(tokenizer, pool, config.seed + 5, exclude)
    params = [*encoder.parameters(), *reader.parameters()]
    optimiser = torch.optim.AdamW(params, lr=config.text_lr, weight_decay=1e-2)
    schedule = one_cycle(optimiser, config.text_lr, config.text_steps)
    gen = torch.Generator().manual_seed(config.seed + 6)
    bar = tqdm(range(config.text_steps), desc="text", unit="step")
    for step in bar:
        idx = torch.randint(0, len(ids), (config.text_batch,), generator=gen)
        cell_logits, background_logits = reader(encoder(ids[idx], return_dict=False)[0])
        loss = torch.nn.functional.cross_entropy(
            cell_logits.reshape(-1, CELL_CLASSES), cells[idx].reshape(-1)
        ) + torch.nn.functional.cross_entropy(background_logits, backgrounds[idx])
        update(optimiser, loss, params)
        schedule.step()
        if logs(step, config.text_steps - 1, config):
            right = (cell_logits.argmax(-1) == cells[idx]).float().mean().item()
            curve.append({"step": step, "loss": round(loss.item(), 5), "cells_right": round(right, 4)})
            bar.set_postfix(loss=f"{loss.item():.4f}")
    return encoder.eval().requires_grad_(False)


def unnamed(model: Any) -> Any:
    """`model` without the stage folder it was loaded from in its config (diffusers records it and saves it
    again), so that a resumed run writes what a whole run writes, with no path of this machine in it."""
    from diffusers.configuration_utils import FrozenDict

    model._internal_dict = FrozenDict({k: v for k, v in model.config.items() if k != "_name_or_path"})
    return model


def train(
    out: Path, config: TrainConfig, work: Path | None = None, until: str = "unet", phases_from: Path | None = None
) -> dict[str, Any]:
    """Run the phases and save the pipeline (fp16 weights) and its training record into `out`.

    With `phases_from`, phases 1-3 are that pipeline folder's (training/world/stages.py).
    """
    import torch

    from training.world.decoder import tune_decoder
    from training.world.denoiser import train_denoiser
    from training.world.model import pin_posterior, save_pipeline, world_tokenizer
    from training.world.refine import refine_denoiser, squares_round

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    work = work or out.with_name(out.name + ".work")
    if phases_from is not None:  # before the scenes are rendered: a folder that cannot serve is refused at once
        seed_stages(phases_from, work, config)
    exclude = {s.key for s in held_out_scenes()}
    scenes = training_scenes(config.scenes, config.seed, exclude)
    images = np.stack([s.render() for s in scenes])
    setup_s = time.perf_counter() - started
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from training.world.model import build_vae

    fields = asdict(config)
    seconds: dict[str, float] = {}

    def stage(name: str, keys: tuple[str, ...]) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
        folder = work / f"stage-{name}"
        wanted = settings(config, keys)
        found = json.loads((folder / "stage.json").read_text()) if (folder / "stage.json").exists() else None
        return folder, wanted, found if found is not None and found["config"] == wanted else None

    def finish(folder: Path, wanted: dict[str, Any], curve: list[dict[str, float]], began: float) -> float:
        took = time.perf_counter() - began
        (folder / "stage.json").write_text(stage_record(wanted, curve, took))
        return took

    folder, wanted, found = stage("vae", VAE_KEYS)
    if found:
        vae = build_vae(config.vae_latent_size)
        vae.load_state_dict(AutoencoderKL.from_pretrained(folder).state_dict())
        vae = vae.eval().requires_grad_(False)
        vae_curve, seconds["vae"] = found["curve"], found["seconds"]
    else:
        began, vae_curve = time.perf_counter(), []
        vae = train_vae(images, config, vae_curve)
        vae.save_pretrained(folder)
        seconds["vae"] = finish(folder, wanted, vae_curve, began)
    pin_posterior(vae)  # a deterministic autoencoder: sampling its posterior must give the mean
    if until == "vae":
        return {"seconds": seconds}
    began = time.perf_counter()
    latents = encode_all(vae, images)
    seconds["encode"] = time.perf_counter() - began
    # SD's latent scaling factor: unit-variance latents for the noise schedule.
    scaling = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling)
    tokenizer = world_tokenizer()

    folder, wanted, found = stage("text", TEXT_KEYS)
    if found:
        text_encoder = CLIPTextModel.from_pretrained(folder).eval().requires_grad_(False)
        text_curve, seconds["text"] = found["curve"], found["seconds"]
    else:
        began, text_curve = time.perf_counter(), []
        text_encoder = train_text(tokenizer, config, text_curve)
        text_encoder.save_pretrained(folder)
        seconds["text"] = finish(folder, wanted, text_curve, began)
    if until == "text":
        return {"seconds": seconds}

    def save(folder: Path, unet: Any, text_encoder: Any) -> None:
        # fp16 on disk halves the download; loading casts back to the worker's dtype.
        parts = [copy.deepcopy(m).to(torch.float16) for m in (vae, text_encoder, unet)]
        save_pipeline(folder, parts[0], parts[1], tokenizer, parts[2])

    folder, wanted, found = stage("unet", UNET_KEYS)
    if found:
        unet = unnamed(UNet2DConditionModel.from_pretrained(folder / "unet")).eval()
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").eval()
        unet_curve, seconds["unet"] = found["curve"], found["seconds"]
    else:
        denoised = train_denoiser(
            scenes, latents, scaling, tokenizer, text_encoder, config,
            checkpoint=lambda step, u, t: save(work / "checkpoints" / f"step-{step}", u, t),
            state_file=work / "checkpoints" / "state.pt", settings=wanted,
        )  # fmt: skip
        unet, text_encoder, unet_curve = denoised.unet, denoised.text_encoder, denoised.curve
        unet.save_pretrained(folder / "unet")
        text_encoder.save_pretrained(folder / "text_encoder")
        seconds["unet"] = finish(folder, wanted, unet_curve, time.perf_counter() - denoised.seconds)
    refine_curve: list[dict[str, float]] = []
    if config.refine_steps:
        folder, wanted, found = stage("refine", (*UNET_KEYS, "refine_"))
        if found:
            unet = unnamed(UNet2DConditionModel.from_pretrained(folder)).eval()
            refine_curve, seconds["refine"] = found["curve"], found["seconds"]
        else:
            refined = refine_denoiser(scenes, latents, scaling, images, tokenizer, text_encoder, unet, config)
            unet, refine_curve = refined.unet, refined.curve
            unet.save_pretrained(folder)
            seconds["refine"] = finish(folder, wanted, refine_curve, time.perf_counter() - refined.seconds)
    polish_curve: list[dict[str, float]] = []
    for round_ in range(1, config.restarts + 1) if config.refine_steps and config.polish_steps else ():
        # Round 1's stage keeps the name and settings it shipped with; a later round's name says its number.
        name = "polish" if round_ == 1 else f"polish-{round_}"
        squares = ("squares_",) if squares_round(config, round_) else ()  # earlier rounds keep their stages
        folder, wanted, found = stage(name, (*UNET_KEYS, "refine_", "polish_", *squares))
        if found:
            unet = unnamed(UNet2DConditionModel.from_pretrained(folder)).eval()
            curve, seconds[name] = found["curve"], found["seconds"]
        else:
            polished = refine_denoiser(
                scenes, latents, scaling, images, tokenizer, text_encoder, unet, config, restart=round_
            )  # fmt: skip
            unet, curve = polished.unet, polished.curve
            unet.save_pretrained(folder)
            seconds[name] = finish(folder, wanted, curve, time.perf_counter() - polished.seconds)
        polish_curve += [{**point, "round": round_} for point in curve] if config.restarts > 1 else curve
    decoder_curve: list[dict[str, float]] = []
    if config.decoder_steps:
        folder, wanted, found = stage(
            "decoder", (*UNET_KEYS, "refine_", "polish_", "restarts", "squares_", "decoder_")
        )  # fmt: skip
        if found:
            vae.load_state_dict(AutoencoderKL.from_pretrained(folder).state_dict())
            decoder_curve, seconds["decoder"] = found["curve"], found["seconds"]
        else:
            redrawn = training_scenes(config.decoder_pictures, config.seed + 15, exclude)
            tuned = tune_decoder(vae, text_encoder, tokenizer, unet, redrawn, config)
            vae, decoder_curve = tuned.vae, tuned.curve
            vae.save_pretrained(folder)
            seconds["decoder"] = finish(folder, wanted, decoder_curve, time.perf_counter() - tuned.seconds)
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
        "text_curve": text_curve,
        "unet_curve": unet_curve,
        "refine_curve": refine_curve,
        "polish_curve": polish_curve,
        "decoder_curve": decoder_curve,
    }
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    """The training command."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the pipeline into")
    parser.add_argument("--work", type=Path, help="folder for the stages and checkpoints (default: OUT.work)")
    parser.add_argument("--until", choices=["vae", "text", "unet"], default="unet", help="the last phase to run")
    parser.add_argument(
        "--phases-from", type=Path, help="take phases 1-3 from this folder, written without phases 4 and 5"
    )
    for field, value in asdict(defaults).items():
        # bool("false") is True: flags that are booleans take yes/no words.
        kind = (lambda word: word.lower() in ("1", "true", "yes")) if isinstance(value, bool) else type(value)
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=value)
    args = vars(parser.parse_args(argv))
    out, work, until, source = args.pop("out"), args.pop("work"), args.pop("until"), args.pop("phases_from")
    try:
        record = train(out, TrainConfig(**args), work, until, source)
    except PhasesError as exc:
        parser.error(str(exc))
    print(f"phases took {record['seconds']}; saved to {out if until == 'unet' else work or out.name + '.work'}")


if __name__ == "__main__":
    main()
