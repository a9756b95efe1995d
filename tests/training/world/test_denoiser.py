"""The UNet phase resumes from its last checkpoint and ends with the weights of a run that never stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.world.test_train import TINY
from training.world.train import main

pytestmark = pytest.mark.timeout(900)
UNET = "unet/diffusion_pytorch_model.safetensors"


def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    steps = [*TINY, "--unet-steps", "4", "--checkpoint-every", "2"]
    main(["--out", str(tmp_path / "whole"), *steps])
    main(["--out", str(tmp_path / "split"), *steps, "--unet-stop", "3"])  # stops after step 3; state saved at 2
    assert json.loads((tmp_path / "split.work" / "stage-unet" / "stage.json").read_text())["curve"][-1]["step"] == 2
    main(["--out", str(tmp_path / "split"), *steps])  # the same schedule to its end: resumes at step 2
    record = json.loads((tmp_path / "split" / "training.json").read_text())
    assert [p["step"] for p in record["unet_curve"]] == [0, 1, 2, 3]
    assert (tmp_path / "split" / UNET).read_bytes() == (tmp_path / "whole" / UNET).read_bytes()


def test_a_run_stopped_at_its_checkpoint_ends_with_the_checkpoint_weights(tmp_path: Path) -> None:
    """Shipping a checkpoint is reproducible: `--unet-stop N` on a state saved at N takes no further step."""
    steps = [*TINY, "--unet-steps", "4", "--checkpoint-every", "2"]
    work = tmp_path / "run.work"
    main(["--out", str(tmp_path / "run"), "--work", str(work), *steps, "--unet-stop", "3"])  # state saved at 2
    main(["--out", str(tmp_path / "at-2"), "--work", str(work), *steps, "--unet-stop", "2"])
    record = json.loads((tmp_path / "at-2" / "training.json").read_text())
    assert [p["step"] for p in record["unet_curve"]] == [0, 1]  # the curve as saved with the state, after two steps
    assert (tmp_path / "at-2" / UNET).read_bytes() == (work / "checkpoints" / "step-2" / UNET).read_bytes()
