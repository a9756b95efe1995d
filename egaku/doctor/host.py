"""This machine: disk space for the history, and GPU memory for each preset where this host renders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from egaku.config import StorageSettings
from egaku.doctor.findings import Finding, fail, ok, skip, warn
from worker.measures import GpuDevice
from worker.settings import WorkerSettings

GIB = 1024**3
DISK_FAIL_GIB = 1.0  # below this the next few hundred pictures may not fit
DISK_WARN_GIB = 5.0
CUDA_FIX = (
    "Install CUDA torch (README: Deploying a GPU worker) and check the driver with nvidia-smi; under Docker, give "
    "the container the GPU (compose.yaml reserves one for the worker)."
)


class NoTorch(Exception):
    """torch is not installed here."""


GpuProbe = Callable[[], list[GpuDevice]]
FreeSpace = Callable[[Path], int]


def cuda_gpus() -> list[GpuDevice]:
    """The CUDA devices torch sees, in its order. The worker's torch is imported here, only where this host renders."""
    try:
        from worker.pipelines import cuda_devices
    except ImportError as exc:
        raise NoTorch(str(exc)) from exc
    return cuda_devices()


def free_bytes(path: Path) -> int:
    """Free space on the disk holding path."""
    return shutil.disk_usage(path).free


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(storage: StorageSettings, free: FreeSpace = free_bytes) -> Finding:
    """The history's folder (or the folder it will be made in) is writable, with room for pictures."""
    folder = storage.history_path
    existing = _existing(folder)
    if not os.access(existing, os.W_OK):
        return fail(
            "disk",
            f"egaku cannot write the history at {folder}: {existing} is not writable for this user.",
            "Make it writable for the user egaku runs as (the images run as uid 10001: chown -R 10001 the volume), "
            "or set storage.history_dir.",
        )
    gib = free(existing) / GIB
    message = f"{gib:.1f} GiB free for the history at {folder}."
    fix = "Free some space there, or point storage.history_dir at a larger disk (pictures take 1–2 MB each)."
    if gib < DISK_FAIL_GIB:
        return fail("disk", message, fix)
    if gib < DISK_WARN_GIB:
        return warn("disk", message, fix)
    return ok("disk", message)


def check_gpu(settings: WorkerSettings, probe: GpuProbe = cuda_gpus) -> list[Finding]:
    """Each preset's stated `gpu_memory_gb` against the memory of the GPU the worker uses (GPU 0)."""
    if settings.device == "cpu":
        return [ok("gpu", 'worker.device = "cpu": the worker renders on the CPU, so no GPU is checked.')]
    if settings.device == "mps":
        return [skip("gpu", 'worker.device = "mps": Apple GPUs share the system\'s memory; not checked.')]
    try:
        gpus = probe()
    except NoTorch:
        return [
            fail(
                "gpu",
                "torch is not installed, and this host renders pictures.",
                "Install CUDA torch first, then egaku's worker (README: Deploying a GPU worker).",
            )
        ]
    stated = {name: p.gpu_memory_gb for name, p in settings.models.items() if p.gpu_memory_gb}
    if not gpus:
        if settings.device == "cuda":
            return [fail("gpu", 'worker.device = "cuda", but torch sees no CUDA GPU.', CUDA_FIX)]
        if stated:
            names = ", ".join(stated)
            message = f"torch sees no CUDA GPU, so the worker renders on the CPU: far too slow for {names}."
            return [warn("gpu", message, CUDA_FIX)]
        return [ok("gpu", "torch sees no CUDA GPU; no preset here states a GPU need, so they run on the CPU.")]
    gpu = gpus[0]
    has = f"GPU 0 ({gpu.name}) has {gpu.total_bytes / GIB:.1f} GiB"
    findings = []
    for name, preset in settings.models.items():
        need = preset.gpu_memory_gb
        if not need:
            findings.append(skip(f"gpu.{name}", f"Preset {name} states no gpu_memory_gb, so it is not checked."))
        elif need * GIB <= gpu.total_bytes:
            findings.append(ok(f"gpu.{name}", f"Preset {name} fits: it needs about {need:g} GiB; {has}."))
        else:
            findings.append(
                fail(
                    f"gpu.{name}",
                    f"Preset {name} needs about {need:g} GiB of GPU memory; {has}.",
                    "Choose a preset that fits (README: Choosing a model), or a GPU with more memory.",
                )
            )
    return findings
