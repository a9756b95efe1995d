"""The training command: seeded (two runs give the same bytes), resumable, and its output loads like any model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.world.train import main

TINY = ["--scenes", "40", "--vae-steps", "2", "--decoder-steps", "2", "--unet-steps", "3", "--unet-stop", "0",
        "--checkpoint-every", "2", "--log-every", "1"]  # fmt: skip
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(autouse=True)
def _threads_restored() -> Iterator[None]:
    """The command sets torch's thread count (to 1, as recorded); later tests get theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_two_runs_give_the_same_weights_and_a_rerun_resumes(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    main(["--out", str(tmp_path / "a"), *TINY])
    main(["--out", str(tmp_path / "b"), *TINY])
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors"):  # fmt: skip
        assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes(), part
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert [p["step"] for p in record["unet_curve"]] == [0, 1, 2]
    assert (tmp_path / "a.work" / "checkpoints" / "step-2" / "model_index.json").exists()

    main(["--out", str(tmp_path / "a"), *TINY])  # every phase found in a.work: nothing retrained
    again = json.loads((tmp_path / "a" / "training.json").read_text())
    assert again["seconds"]["unet"] == record["seconds"]["unet"]
    assert (tmp_path / "a" / "unet/diffusion_pytorch_model.safetensors").read_bytes() == (
        tmp_path / "b" / "unet/diffusion_pytorch_model.safetensors"
    ).read_bytes()
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "a")
    assert pipe.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]
