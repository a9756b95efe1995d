"""The training command: seeded (two runs give the same bytes), resumable, and its output loads like any model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.world.train import main

TINY = ["--scenes", "40", "--vae-steps", "2", "--text-steps", "2", "--unet-steps", "3", "--unet-stop", "0",
        "--checkpoint-every", "2", "--log-every", "1", "--refine-steps", "0", "--polish-steps", "0",
        "--decoder-steps", "0"]  # fmt: skip
pytestmark = pytest.mark.timeout(900)


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


def test_the_encoder_stays_as_phase_two_left_it_unless_given_a_learning_rate(tmp_path: Path) -> None:
    main(["--out", str(tmp_path / "three"), *TINY])
    main(["--out", str(tmp_path / "one"), *TINY, "--unet-stop", "1"])
    same = "text_encoder/model.safetensors"
    assert (tmp_path / "three" / same).read_bytes() == (tmp_path / "one" / same).read_bytes()
    moved = "unet/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "three" / moved).read_bytes() != (tmp_path / "one" / moved).read_bytes()
    main(["--out", str(tmp_path / "tuned"), *TINY, "--encoder-lr", "1e-3"])
    assert (tmp_path / "tuned" / same).read_bytes() != (tmp_path / "three" / same).read_bytes()


def test_the_text_phase_learns_each_cell_from_captions(tmp_path: Path) -> None:
    """Phase 2 alone, briefly: its loss falls by more than a quarter."""
    main(["--out", str(tmp_path / "t"), *TINY, "--text-steps", "60", "--text-batch", "32", "--until", "text"])
    curve = json.loads((tmp_path / "t.work" / "stage-text" / "stage.json").read_text())["curve"]
    assert curve[-1]["loss"] < curve[0]["loss"] * 0.7


def test_the_text_phase_labels_each_cell_and_the_background() -> None:
    from training.world.scenes import Scene, Shape
    from training.world.train import CELL_CLASSES, scene_targets

    scene = Scene("white", (Shape("circle", "red", "small", (0, 0)), Shape("triangle", "purple", "large", (2, 2))))
    cells, background = scene_targets(scene)
    assert background == 5  # BACKGROUNDS: red green blue yellow purple white ...
    assert cells == [1, 0, 0, 0, 0, 0, 0, 0, CELL_CLASSES - 1]  # purple, triangle, large: the last of each
    assert CELL_CLASSES == 31
