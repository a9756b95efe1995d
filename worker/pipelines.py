"""Loading diffusers pipelines from a preset: hub id, local directory or single file."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from worker.errors import ModelUnavailable
from worker.families import FAMILIES, Family, family_for
from worker.measures import GpuDevice, GpuMemory
from worker.settings import ModelPreset

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


def cuda_devices() -> list[GpuDevice]:
    """The CUDA devices torch sees, in its order (none on a CPU torch)."""
    if not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    return [
        GpuDevice(torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory) for i in range(count)
    ]


def device_memory(placement: Placement) -> GpuMemory | None:
    """A CUDA device's memory as this process sees it; None for any other device."""
    device = torch.device(placement.device)
    if device.type != "cuda":
        return None
    _free, total = torch.cuda.mem_get_info(device)
    return GpuMemory(torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device), total)


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


def tiny_dir(cache_dir: Path, family: str) -> Path:
    """A family's tiny pipeline folder, built on first use ("tiny" presets load from it)."""
    return built_once(cache_dir / f"tiny-{family}", family_for(family).build_tiny, "model_index.json")


def shipped(source: str) -> str:
    """The folder of a model shipped with egaku ("world": the trained shape-world pipeline); other sources as given."""
    if source == "world":
        from worker.world import world_model_dir

        return str(world_model_dir())
    return source


def _saved_class(source: str) -> str | None:
    """The pipeline class a local folder's model_index.json names (None when there is none to read)."""
    index = Path(source).expanduser() / "model_index.json"
    if not index.is_file():
        return None
    name = json.loads(index.read_text()).get("_class_name")
    return str(name) if name else None


def check_preset(name: str, preset: ModelPreset) -> None:
    """Refuse, naming the preset, a model that cannot load: a class or package missing, or the wrong family.

    Cheap (no weights are read), so the worker runs it for every preset before it serves.
    """
    family = family_for(preset.family)
    try:
        family.check_requirements()
        family.pipeline_class(family.base)
        if preset.ip_adapter is not None and not family.ip_adapters:
            takers = ", ".join(f for f in FAMILIES if family_for(f).ip_adapters)
            raise ModelUnavailable(f"a {family.name} model takes no IP-Adapter (ip_adapter); these do: {takers}")
        saved = _saved_class(shipped(preset.source)) if preset.source != "tiny" else None
        if saved is not None and saved not in family.class_names():
            fits = [f for f in FAMILIES if saved in family_for(f).class_names()]
            hint = f"set family = {fits[0]!r}" if fits else "no family here serves it"
            raise ModelUnavailable(f"{preset.source} holds a {saved}, not a {preset.family} model: {hint}")
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"model preset {name!r}: {exc.message}") from exc


def _from_single_file(cls: type[Any], family: Family, source: str, config: str | None, kwargs: dict[str, Any]) -> Any:
    """A whole-pipeline checkpoint (SDXL, SD1.5), or one holding only the denoiser (FLUX, SD3 files).

    The latter is how FLUX and SD3.5 checkpoints are usually shared: the transformer
    alone. Its other components (encoders, VAE) then come from `config`, the hub id or
    folder of the full model.
    """
    import diffusers
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    try:
        return cls.from_single_file(source, **kwargs, **({"config": config} if config else {}))
    except (SingleFileComponentError, OSError) as exc:
        # Without `config`, diffusers guesses the model from the keys and fetches that guess's config.
        if not config:
            raise ModelUnavailable(
                f"{source} could not load as a whole {family.name} pipeline ({type(exc).__name__}): set config = "
                "the hub id or folder of the full model, for its text encoders and VAE"
            ) from exc
        if not isinstance(exc, SingleFileComponentError):
            raise
    model = getattr(diffusers, family.denoiser_class)
    denoiser = model.from_single_file(source, config=config, subfolder=family.denoiser, **kwargs)
    return cls.from_pretrained(config, **{family.denoiser: denoiser}, **kwargs)


def load_pipeline(preset: ModelPreset, placement: Placement, cache_dir: Path, **components: Any) -> Any:
    """Load a preset the way users' model ids load: from_pretrained or from_single_file.

    `components` are parts built by the caller instead of read from the model (diffusers' own keyword).
    """
    family = family_for(preset.family)
    source = preset.source
    if source == "tiny":
        source = str(tiny_dir(cache_dir, preset.family))
    source = shipped(source)
    cls = family.pipeline_class(family.base)
    kwargs: dict[str, Any] = {"dtype": placement.dtype, **components}
    if source.endswith(SINGLE_FILE_SUFFIXES):
        log.info("loading single file %s", source)
        pipe = _from_single_file(cls, family, source, preset.config, kwargs)
    else:
        log.info("loading pretrained %s", source)
        pipe = cls.from_pretrained(source, **kwargs)
    if preset.scheduler:
        import diffusers

        pipe.scheduler = getattr(diffusers, preset.scheduler).from_config(pipe.scheduler.config)
    family.attach(pipe, preset, cache_dir)
    pipe.to(placement.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
