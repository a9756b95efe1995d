"""The doctor's checks of this machine: disk space for the history, GPU memory for each preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from egaku.config import StorageSettings
from egaku.doctor.findings import Finding
from egaku.doctor.host import GIB, NoTorch, check_disk, check_gpu, cuda_gpus
from worker.measures import GpuDevice
from worker.settings import ModelPreset, WorkerSettings

DISK_FIX = "Free some space there, or point storage.history_dir at a larger disk (pictures take 1–2 MB each)."
L4 = GpuDevice("NVIDIA L4", int(22.5 * GIB))


def free(gib: float) -> object:
    return lambda _path: int(gib * GIB)


@pytest.mark.parametrize(("gib", "status", "fix"), [(50.0, "ok", ""), (3.0, "warn", DISK_FIX), (0.5, "fail", DISK_FIX)])
def test_disk_space_for_the_history(tmp_path: Path, gib: float, status: str, fix: str) -> None:
    folder = tmp_path / "not-made-yet" / "history"
    finding = check_disk(StorageSettings(history_dir=str(folder)), free(gib))  # type: ignore[arg-type]
    assert finding == Finding("disk", status, f"{gib:.1f} GiB free for the history at {folder}.", fix)  # type: ignore[arg-type]


def test_the_real_free_space_is_read(tmp_path: Path) -> None:
    finding = check_disk(StorageSettings(history_dir=str(tmp_path)))
    assert finding.message.endswith(f" GiB free for the history at {tmp_path}.")


def presets(**needs: float | None) -> WorkerSettings:
    models = {name: ModelPreset(source="tiny", width=64, height=64, gpu_memory_gb=need) for name, need in needs.items()}
    return WorkerSettings(models=models, default_model=next(iter(models)))


def test_each_preset_against_the_gpu() -> None:
    findings = check_gpu(presets(flux=33, sdxl=7, tiny=None), lambda: [L4, GpuDevice("second", 80 * GIB)])
    assert findings == [
        Finding(
            "gpu.flux",
            "fail",
            "Preset flux needs about 33 GiB of GPU memory; GPU 0 (NVIDIA L4) has 22.5 GiB.",
            "Choose a preset that fits (README: Choosing a model), or a GPU with more memory.",
        ),
        Finding("gpu.sdxl", "ok", "Preset sdxl fits: it needs about 7 GiB; GPU 0 (NVIDIA L4) has 22.5 GiB."),
        Finding("gpu.tiny", "skip", "Preset tiny states no gpu_memory_gb, so it is not checked."),
    ]


CUDA_FIX = (
    "Install CUDA torch (README: Deploying a GPU worker) and check the driver with nvidia-smi; under Docker, give the "
    "container the GPU (compose.yaml reserves one for the worker)."
)


def test_no_gpu() -> None:
    assert check_gpu(presets(flux=33, tiny=None), list) == [
        Finding(
            "gpu",
            "warn",
            "torch sees no CUDA GPU, so the worker renders on the CPU: far too slow for flux.",
            CUDA_FIX,
        )
    ]
    assert check_gpu(presets(tiny=None), list) == [
        Finding("gpu", "ok", "torch sees no CUDA GPU; no preset here states a GPU need, so they run on the CPU.")
    ]
    cuda = presets(tiny=None).model_copy(update={"device": "cuda"})
    assert check_gpu(cuda, list) == [
        Finding("gpu", "fail", 'worker.device = "cuda", but torch sees no CUDA GPU.', CUDA_FIX)
    ]


def test_no_torch() -> None:
    def missing() -> list[GpuDevice]:
        raise NoTorch("No module named 'torch'")

    assert check_gpu(presets(flux=33), missing) == [
        Finding(
            "gpu",
            "fail",
            "torch is not installed, and this host renders pictures.",
            "Install CUDA torch first, then egaku's worker (README: Deploying a GPU worker).",
        )
    ]


def test_the_cpu_and_apple_devices_are_not_checked() -> None:
    cpu = presets(flux=33).model_copy(update={"device": "cpu"})
    mps = presets(flux=33).model_copy(update={"device": "mps"})
    assert check_gpu(cpu, missing_probe) == [
        Finding("gpu", "ok", 'worker.device = "cpu": the worker renders on the CPU, so no GPU is checked.')
    ]
    assert check_gpu(mps, missing_probe) == [
        Finding("gpu", "skip", 'worker.device = "mps": Apple GPUs share the system\'s memory; not checked.')
    ]


def missing_probe() -> list[GpuDevice]:
    raise AssertionError("the GPU is not probed for the CPU or MPS")


def test_the_real_probe() -> None:
    """The real probe imports torch: no GPU on a CPU torch (as here); each device with its memory on CUDA."""
    import torch

    gpus = cuda_gpus()
    assert len(gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert all(gpu.name and gpu.total_bytes > 0 for gpu in gpus)
