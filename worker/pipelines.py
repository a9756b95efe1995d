"""Loading diffusers pipelines from a preset: hub id, local directory or single file."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from worker.settings import ModelPreset
from worker.tiny import save_tiny_sd15, save_tiny_sdxl

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class Placement:
    """Where and in what precision a pipeline runs."""

    device: str
    dtype: torch.dtype


def choose_placement(device: str = "auto", dtype: str = "auto") -> Placement:
    """Pick the device and dtype: the best available unless the config names one."""
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if dtype == "auto":
        # bf16 keeps SDXL's VAE out of the fp16 overflow trap on GPUs; CPUs stay fp32.
        chosen = torch.bfloat16 if device == "cuda" else torch.float16 if device == "mps" else torch.float32
    else:
        chosen = getattr(torch, dtype)
    return Placement(device=device, dtype=chosen)


def built_once(target: Path, build: Callable[[Path], object], marker: str) -> Path:
    """Build a model folder once, atomically (staging folder + rename), and return it."""
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        try:
            os.replace(staging, target)
        except OSError:
            # Another process won the race; its copy is as good as ours.
            if not (target / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def tiny_model_dir(cache_dir: Path) -> Path:
    """The tiny SDXL preset's pipeline folder, built on first use."""
    return built_once(cache_dir / "tiny-sdxl", save_tiny_sdxl, "model_index.json")


def tiny_instruct_dir(cache_dir: Path) -> Path:
    """A tiny SDXL InstructPix2Pix pipeline folder, built on first use."""
    return built_once(cache_dir / "tiny-sdxl-instruct", lambda d: save_tiny_sdxl(d, instruct=True), "model_index.json")


def tiny_sd15_dir(cache_dir: Path) -> Path:
    """The tiny SD1.5 preset's pipeline folder, built on first use."""
    return built_once(cache_dir / "tiny-sd15", save_tiny_sd15, "model_index.json")


def pipeline_class(family: str) -> type[Any]:
    """The diffusers pipeline class for a preset's family."""
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionXLInstructPix2PixPipeline

    return {
        "sdxl": StableDiffusionXLPipeline,
        "sd15": StableDiffusionPipeline,
        "sdxl-instruct": StableDiffusionXLInstructPix2PixPipeline,
        "sd15-instruct": StableDiffusionInstructPix2PixPipeline,
    }[family]


def load_pipeline(preset: ModelPreset, placement: Placement, cache_dir: Path) -> Any:
    """Load a preset the way users' model ids load: from_pretrained or from_single_file."""
    source = preset.source
    if source == "tiny":
        tiny = {"sdxl": tiny_model_dir, "sd15": tiny_sd15_dir, "sdxl-instruct": tiny_instruct_dir}
        if preset.family not in tiny:
            raise ValueError(f"there is no tiny {preset.family} model")
        source = str(tiny[preset.family](cache_dir))
    elif source == "world":
        from worker.world.model import world_model_dir

        source = str(world_model_dir())  # the shipped, trained shape-world pipeline (sd15)
    cls = pipeline_class(preset.family)
    kwargs: dict[str, Any] = {"dtype": placement.dtype}
    if source.endswith(SINGLE_FILE_SUFFIXES):
        log.info("loading single file %s", source)
        if preset.config:
            kwargs["config"] = preset.config
        pipe = cls.from_single_file(source, **kwargs)
    else:
        log.info("loading pretrained %s", source)
        pipe = cls.from_pretrained(source, **kwargs)
    if preset.scheduler:
        import diffusers

        pipe.scheduler = getattr(diffusers, preset.scheduler).from_config(pipe.scheduler.config)
    pipe.to(placement.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
