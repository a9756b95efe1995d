"""The shipped shape-world model, measured by the analytic judge.

1. Prompt fidelity: the 100 held-back captions (seed i for caption i), each object's colour,
   shape, size and position read back from the picture.
2. Edit coherence: each of the first `--edits` held-back scenes drawn, then its first object
   repainted in a new colour through its mask (same seed); change inside against outside. Twice:
   through the worker's own edit (the engine, as /v1/images/edits and the bot run it), and through
   diffusers' inpaint pipeline alone.
   Chat edits (training/world/edits.py): `--per-kind` edits of each kind (recolour, reshape, resize,
   move, add, remove, background) sent as the chat sends them (the whole new caption and the words
   naming what changes, no mask: the world masker finds the region), judged: the change read right
   and the rest unchanged, and the change outside the edited thing against inside it.
3. CPU time per image: one 64x64 picture at the preset's steps, batch 1, median of 7.
4. The training record shipped next to the weights (time, loss curve).

    python -m benchmarks.world [--edits 20] [--write docs/benchmarks.md] [--picture docs/world-example.png]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from benchmarks._markdown import device, write_section
from training.world.edits import KINDS, edit_accuracy, world_edits
from training.world.evaluate import (
    draw,
    edit_coherence,
    pipeline_inpaint,
    prompt_fidelity,
    round_trip_fidelity,
    worker_inpaint,
)
from training.world.scenes import held_out_scenes
from worker.engine import Engine
from worker.pipelines import choose_placement, load_pipeline
from worker.settings import WorkerSettings, world_preset
from worker.world import world_model_dir

EXAMPLES = (
    "a large red circle in the center, on a white background",
    "a small blue square at the top left and a large yellow triangle at the bottom right, on a black background",
    "a large green circle on the left, a small purple square at the top right and "
    "a large blue triangle at the bottom, on a gray background",
    "a big yellow square in the middle, on a blue background",
)


def seconds_per_image(pipe: Any, steps: int, guidance: float, runs: int = 7) -> float:
    """Median wall time of one picture (batch 1) at the preset's steps."""
    draw(pipe, [EXAMPLES[0]], [0], steps, guidance)  # warm-up
    times = []
    for i in range(runs):
        started = time.perf_counter()
        draw(pipe, [EXAMPLES[0]], [i], steps, guidance)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def example_sheet(pipe: Any, steps: int, guidance: float, path: Path) -> None:
    """The README's picture: each example prompt drawn at 4x (nearest), side by side."""
    pictures = draw(pipe, list(EXAMPLES), list(range(len(EXAMPLES))), steps, guidance)
    sheet = Image.new("RGB", (256 * len(pictures) + 8 * (len(pictures) - 1), 256), "white")
    for i, picture in enumerate(pictures):
        sheet.paste(Image.fromarray(picture).resize((256, 256), Image.Resampling.NEAREST), (i * 264, 0))
    sheet.save(path, optimize=True)


def curve_points(curve: list[dict[str, float]], key: str, points: int = 8) -> str:
    """A few points of a loss curve, 'step: value', evenly spaced."""
    stride = max(1, len(curve) // points)
    chosen = [*curve[::stride], curve[-1]] if curve[-1] not in curve[::stride] else curve[::stride]
    return ", ".join(f"{int(c['step'])}: {c[key]:.4f}" for c in chosen)


def steps_run(record: dict[str, Any], curve: str) -> int:
    """How many steps a phase ran, from its loss curve in the training record (0: none)."""
    points = record.get(curve) or []
    return int(points[-1]["step"]) + 1 if points else 0


def refined(record: dict[str, Any]) -> str:
    """The phase-4 part of the training paragraph (none when the weights skipped it)."""
    steps = steps_run(record, "refine_curve")
    if not steps:
        return ""
    config = record["config"]
    return (
        f", phase 4 {record['seconds']['refine'] / 60:.1f} min ({steps} steps of {config['batch']}"
        f"{', the top level grown' if config.get('refine_grow_top') else ''}, lr {config['refine_lr']}, "
        f"shape weight {config.get('refine_shape_weight', 0)}){polished(record)}"
    )


def polished(record: dict[str, Any]) -> str:
    """Phase 4's restarts, when the weights had any (each round's curve counts its steps from 0)."""
    steps = steps_run(record, "polish_curve")
    if not steps:
        return ""
    rounds = record["config"].get("restarts", 1)
    minutes = " + ".join(
        f"{record['seconds']['polish' if r == 1 else f'polish-{r}'] / 60:.1f}" for r in range(1, rounds + 1)
    )
    times = "" if rounds == 1 else " twice" if rounds == 2 else f" {rounds} times"
    each = " each" if rounds > 1 else ""
    weight, first = record["config"].get("squares_weight", 0), record["config"].get("squares_from", 1)
    drawn = weight and first <= rounds
    squares = f"; from round {first} on, a scene drawn with weight 1 + {weight} x its squares" if drawn else ""
    return f", then restarted{times} {minutes} min ({steps} steps{each}, lr {record['config']['polish_lr']}{squares})"


def tuned(record: dict[str, Any]) -> str:
    """The phase-5 part of the training paragraph (none when the weights skipped it)."""
    steps = steps_run(record, "decoder_curve")
    if not steps:
        return ""
    config = record["config"]
    return (
        f", phase 5 {record['seconds']['decoder'] / 60:.1f} min ({config['decoder_pictures']} scenes redrawn, "
        f"{steps} decoder steps of {config['decoder_batch']}, lr {config['decoder_lr']})"
    )


def main() -> None:
    """Measure and print (and optionally write) the world model's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--per-kind", type=int, default=10, help="chat edits of each kind")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--picture", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preset = world_preset()
    scenes = held_out_scenes()
    edit_scenes = scenes[: args.edits]
    # The engine keeps its cache folder for as long as it serves (its edits may load more parts).
    with tempfile.TemporaryDirectory() as cache:
        pipe = load_pipeline(preset, choose_placement("cpu"), Path(cache))
        started = time.perf_counter()
        fid = prompt_fidelity(pipe, scenes, preset.steps, preset.guidance)
        fidelity_s = time.perf_counter() - started
        ceiling = round_trip_fidelity(pipe, scenes)
        engine = Engine(WorkerSettings(cache_dir=cache, device="cpu", default_model="world", models={"world": preset}))
        engine.load()
        edits = edit_coherence(pipe, edit_scenes, preset.steps, preset.guidance, worker_inpaint(engine))
        chat = edit_accuracy(engine, world_edits(scenes, args.per_kind))
    raw = edit_coherence(
        pipe, edit_scenes, preset.steps, preset.guidance, pipeline_inpaint(pipe, preset.steps, preset.guidance)
    )
    per_image = seconds_per_image(pipe, preset.steps, preset.guidance)
    if args.picture:
        example_sheet(pipe, preset.steps, preset.guidance, args.picture)
    record = json.loads((world_model_dir() / "training.json").read_text())
    secs = record["seconds"]
    print(fid, edits, raw, chat, f"{per_image:.3f} s/image", sep="\n")
    kinds = ", ".join(f"{kind} {chat.by_kind[kind]:.0%}" for kind in KINDS)
    body = f"""## The shape-world model on CPU (issue: a built-in model that really draws)

Device: {device()}, torch {torch.__version__}, {args.threads} thread(s). Date: {dt.date.today().isoformat()}.
Load average while measuring: {os.getloadavg()[0]:.1f} on 2 cores.
Command: `python -m benchmarks.world --threads {args.threads} --edits {args.edits} --per-kind {args.per_kind} \
--write docs/benchmarks.md{f" --picture {args.picture}" if args.picture else ""}`.
Preset `world`: {preset.steps} steps, guidance {preset.guidance}, 64x64.

| measure | figure | goal |
|---|---|---|
| colour right (held-back captions, {fid.objects} objects) | {fid.colour:.1%} | ≥ 90% |
| shape right | {fid.shape:.1%} | ≥ 90% |
| position right (3x3 cell) | {fid.position:.1%} | ≥ 90% |
| size right | {fid.size:.1%} | |
| all four right | {fid.all_four:.1%} | |
| background right (100 pictures) | {fid.background:.1%} | |
| the VAE's round trip alone (the scenes themselves encoded and decoded): colour / shape / position right \
| {ceiling.colour:.1%} / {ceiling.shape:.1%} / {ceiling.position:.1%} | |
| edit through the worker: mean change outside / inside the object ({edits.edits} edits, 0..255) \
| {edits.outside:.2f} / {edits.inside:.1f} = {edits.ratio:.3f} | < 0.2 |
| edit through the worker: the judge reads the new colour on the object | {edits.recoloured:.1%} | |
| edit through diffusers' inpaint pipeline alone: outside / inside \
| {raw.outside:.1f} / {raw.inside:.1f} = {raw.ratio:.3f} | |
| edit through diffusers' inpaint pipeline alone: new colour read | {raw.recoloured:.1%} | |
| chat edits ({chat.edits}: the new caption and the words, the world masker): the change read right \
and the rest unchanged | {chat.right:.1%} | ≥ 90% |
| chat edits: the change read right / the rest unchanged | {chat.attribute:.1%} / {chat.rest:.1%} | |
| chat edits: mean change outside / inside the edited thing (0..255) \
| {chat.outside:.2f} / {chat.inside:.1f} = {chat.ratio:.3f} | < 0.2 |
| chat edits right, per kind | {kinds} | |
| one picture, batch 1 | {per_image:.3f} s | < 0.5 s |
| 100 held-back pictures, batches of 25 | {fidelity_s:.1f} s | |

Training (`python -m training.world.train --out worker/world/weights`, seed {record["config"]["seed"]},
{record["threads"]} thread(s) on the 2-core machine, torch {record["torch"]}):
{record["total_seconds"] / 60:.1f} min in all. Phases: VAE {secs["vae"] / 60:.1f} min
({record["config"]["vae_steps"]} steps of {record["config"]["vae_batch"]}), encoding the
{record["config"]["scenes"]} training scenes {secs["encode"] / 60:.1f} min, text encoder
{secs["text"] / 60:.1f} min ({record["config"]["text_steps"]} steps of {record["config"]["text_batch"]} captions),
UNet {secs["unet"] / 60:.1f} min ({len(record["unet_curve"]) and record["unet_curve"][-1]["step"] + 1} steps of
{record["config"]["batch"]}, of a {record["config"]["unet_steps"]}-step cosine schedule){refined(record)}{
        tuned(record)
    }.

- VAE reconstruction MSE (pixels in -1..1), step: value: {curve_points(record["vae_curve"], "mse")}
- Text encoder: cross-entropy of its cell reader, step: value: {curve_points(record["text_curve"], "loss")};
  share of cells read right at the last step: {record["text_curve"][-1]["cells_right"]:.1%}
- Denoiser loss (v-prediction MSE, min-SNR weighted), step: value: {curve_points(record["unet_curve"], "loss")}
"""
    if record.get("refine_curve"):
        body += (
            "- Phase 4 loss (v-prediction MSE, edge- and shape-weighted), step: value: "
            f"{curve_points(record['refine_curve'], 'loss')}\n"
        )
    if record.get("decoder_curve"):
        body += (
            "- Phase 5 loss (the decoder on the painter's redrawings, edge-weighted MSE + L1), step: value: "
            f"{curve_points(record['decoder_curve'], 'loss')}\n"
        )
    if args.write:
        write_section(args.write, "world", body)


if __name__ == "__main__":
    main()
