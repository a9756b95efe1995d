"""The upscaler network: an ESRGAN weights file loaded through spandrel as a user's file, sizes, tiles, pickles."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from safetensors.torch import save_file

from tests.conftest import tiny_worker_settings
from tests.fakes.upscalers import esrgan_file, import_spandrel
from worker.errors import JobCancelled, ModelUnavailable, WorkerError
from worker.pipelines import Placement
from worker.protocol import Size
from worker.upscale.network import Upscaler, check_upscaler

CPU = Placement(device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 4x ESRGAN (RRDBNet, 8 filters, 1 block) with random weights, saved as safetensors."""
    import_spandrel()
    return esrgan_file(tmp_path_factory.mktemp("upscaler") / "4x-tiny-esrgan.safetensors")


def upscaler(path: Path, *, tile: int = 4096, overlap: int = 0, allow_pickle: bool = False) -> Upscaler:
    return Upscaler(str(path), CPU, allow_pickle=allow_pickle, tile=tile, overlap=overlap)


def noise(size: tuple[int, int], seed: int = 5) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), mode="RGB")


def array(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture, dtype=np.int16)


def test_spandrel_detects_the_architecture_from_the_file(weights: Path) -> None:
    network = upscaler(weights)
    assert (network.name, network.scale) == ("4x-tiny-esrgan.safetensors", 4)
    picture = noise((40, 24))
    assert network.upscale(picture, Size(width=160, height=96)).size == (160, 96)


def test_2x_from_a_4x_network_is_its_output_scaled_down(weights: Path) -> None:
    network = upscaler(weights)
    picture = noise((40, 24))
    four = network.upscale(picture, Size(width=160, height=96))
    two = network.upscale(picture, Size(width=80, height=48))
    assert network.passes((40, 24), Size(width=80, height=48)) == 1
    assert np.array_equal(array(two), array(four.resize((80, 48), Image.Resampling.LANCZOS)))


def test_a_2x_network_runs_twice_for_4x(tmp_path: Path) -> None:
    network = upscaler(esrgan_file(tmp_path / "2x.safetensors", scale=2))
    picture = noise((20, 12))
    assert (network.scale, network.passes((20, 12), Size(width=80, height=48))) == (2, 2)
    once = network.upscale(picture, Size(width=40, height=24))
    twice = network.upscale(picture, Size(width=80, height=48))
    assert np.array_equal(array(twice), array(network.upscale(once, Size(width=80, height=48))))


def test_tiles_with_overlap_meet_without_seams(weights: Path) -> None:
    picture = noise((48, 40))
    whole = array(upscaler(weights).upscale(picture, Size(width=192, height=160)))
    tiled = array(upscaler(weights, tile=16, overlap=24).upscale(picture, Size(width=192, height=160)))
    assert np.abs(tiled - whole).max() <= 1
    # Without the neighbours' context the tile borders show: the check above can fail.
    seams = array(upscaler(weights, tile=16, overlap=0).upscale(picture, Size(width=192, height=160)))
    assert np.abs(seams - whole).max() > 8


def test_a_stop_ends_it_between_tiles(weights: Path) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(JobCancelled, match="the upscale was stopped"):
        upscaler(weights, tile=16).upscale(noise((48, 40)), Size(width=192, height=160), stop)


def test_a_pickle_loads_only_with_the_opt_in(weights: Path, tmp_path: Path) -> None:
    pickled = esrgan_file(tmp_path / "4x-tiny-esrgan.pth")  # the same seed: the same weights as `weights`
    with pytest.raises(ValidationError, match="is a pickle, and loading one can run code: convert it"):
        tiny_worker_settings(tmp_path, upscaler=str(pickled))
    with pytest.raises(WorkerError, match="is a pickle, and loading one can run code"):
        upscaler(pickled)
    assert tiny_worker_settings(tmp_path, upscaler=str(pickled), upscaler_allow_pickle=True).upscaler == str(pickled)
    picture = noise((24, 16))
    size = Size(width=96, height=64)
    assert np.array_equal(
        array(upscaler(pickled, allow_pickle=True).upscale(picture, size)),
        array(upscaler(weights).upscale(picture, size)),
    )
    with pytest.raises(ValidationError, match=r"must be a \.safetensors weights file"):
        tiny_worker_settings(tmp_path, upscaler=str(tmp_path / "model.bin"))


def test_files_that_are_not_upscalers_are_named(tmp_path: Path) -> None:
    one_x = esrgan_file(tmp_path / "1x-denoise.safetensors", scale=1)
    with pytest.raises(
        WorkerError, match=r"'1x-denoise.safetensors' \(ESRGAN, Restoration, scale 1\) is not an RGB upscaler"
    ):
        upscaler(one_x)
    unknown = tmp_path / "mystery.safetensors"
    save_file({"layer.weight": torch.zeros(3, 3)}, str(unknown))
    with pytest.raises(WorkerError, match=r"the upscaler 'mystery\.safetensors' could not be loaded"):
        upscaler(unknown)


def test_the_worker_checks_the_file_at_start_up(weights: Path, tmp_path: Path) -> None:
    check_upscaler(str(weights))
    with pytest.raises(ModelUnavailable, match=r"upscaler '.*gone\.safetensors': no such file"):
        check_upscaler(str(tmp_path / "gone.safetensors"))
