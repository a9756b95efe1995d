"""Phases 1-3 taken from a pipeline folder this command wrote: `--phases-from DIR`.

Phase 4 (training/world/refine.py) is the phase tried again and again, and it starts from phase 3's
weights. The work folder holds those only while it lasts; a folder the command wrote with
`--refine-steps 0 --decoder-steps 0` holds them for good (the world weights at commit 4ae2579 are one). Seeding the
stages from such a folder runs phases 4 and 5 alone, from exactly the weights it names, in minutes rather
than the three hours of phases 1-3. The weights are taken as written (fp16, cast to fp32) and the
phases' records (curves, times) are copied from the folder's training.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from training.world.steps import TrainConfig

# The settings each phase's stage depends on, by prefix (seed and scenes belong to every phase).
VAE_KEYS = ("vae",)
TEXT_KEYS = ("text_",)
UNET_KEYS = ("vae", "text_", "unet", "batch", "lr", "encoder", "warmup", "caption", "snr", "ema")


class PhasesError(ValueError):
    """The folder cannot stand for this run's phases 1-3."""


def settings(config: TrainConfig, keys: tuple[str, ...]) -> dict[str, Any]:
    """The settings of `config` that a stage of these key prefixes depends on."""
    return {k: v for k, v in asdict(config).items() if k in ("seed", "scenes") or k.startswith(keys)}


def stage_record(config: dict[str, Any], curve: list[dict[str, float]], seconds: float) -> str:
    """A stage's stage.json: the settings it was made with, its loss curve and its time."""
    return json.dumps({"config": config, "curve": curve, "seconds": seconds})


def seed_stages(source: Path, work: Path, config: TrainConfig) -> None:
    """Write `work`'s vae, text and unet stages from the pipeline folder `source`, or PhasesError.

    The folder's recorded settings must be this run's for phases 1-3. A setting its record lacks was
    added to the command later, with a default that keeps the earlier behaviour, so it must be at
    that default here.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    try:
        record = json.loads((source / "training.json").read_text())
    except (OSError, ValueError) as exc:
        raise PhasesError(f"{source} has no readable training.json: {exc}") from exc
    made, defaults = record["config"], asdict(TrainConfig())
    differ = [
        f"{k} ({made.get(k, defaults[k])} there, {v} here)"
        for k, v in settings(config, UNET_KEYS).items()
        if made.get(k, defaults[k]) != v
    ]
    if differ:
        raise PhasesError(f"{source} was made with other phase 1-3 settings: {', '.join(differ)}")
    if made.get("refine_steps", 0):
        raise PhasesError(f"{source} is already refined (phase 4 ran there); phase 4 starts from phase 3's weights")
    if made.get("decoder_steps", 0):
        raise PhasesError(f"{source} has a tuned decoder (phase 5 ran there); phases 1-3 come as phase 3 left them")
    seconds = record["seconds"]

    def write(name: str, model: Any, keys: tuple[str, ...], phase: str) -> None:
        model.save_pretrained(work / f"stage-{name}")
        record_file = work / f"stage-{name.split('/')[0]}" / "stage.json"
        record_file.write_text(stage_record(settings(config, keys), record[f"{phase}_curve"], seconds[phase]))

    text_encoder = CLIPTextModel.from_pretrained(source / "text_encoder").float()
    write("vae", AutoencoderKL.from_pretrained(source / "vae").float(), VAE_KEYS, "vae")
    write("text", text_encoder, TEXT_KEYS, "text")
    text_encoder.save_pretrained(work / "stage-unet" / "text_encoder")
    write("unet/unet", UNet2DConditionModel.from_pretrained(source / "unet").float(), UNET_KEYS, "unet")
