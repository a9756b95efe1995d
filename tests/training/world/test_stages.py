"""`--phases-from`: phase 4 alone, from the phases 1-3 of a folder the command wrote, the same bytes each time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.world.test_train import TINY
from training.world.train import main

pytestmark = pytest.mark.timeout(900)
UNET = "unet/diffusion_pytorch_model.safetensors"
VAE = "vae/diffusion_pytorch_model.safetensors"
TEXT = "text_encoder/model.safetensors"
REFINE = ["--refine-steps", "2"]


def test_phase_four_runs_alone_from_a_written_folder_and_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    main(["--out", str(tmp_path / "three"), *TINY])
    for name in ("b", "c"):
        main(["--out", str(tmp_path / name), *TINY, *REFINE, "--phases-from", str(tmp_path / "three")])
    assert (tmp_path / "b" / UNET).read_bytes() == (tmp_path / "c" / UNET).read_bytes()
    assert (tmp_path / "b" / UNET).read_bytes() != (tmp_path / "three" / UNET).read_bytes()
    for kept in (VAE, TEXT):  # fp16 -> fp32 -> fp16 is exact: phases 1-2 come back as they were written
        assert (tmp_path / "b" / kept).read_bytes() == (tmp_path / "three" / kept).read_bytes(), kept
    three = json.loads((tmp_path / "three" / "training.json").read_text())
    refined = json.loads((tmp_path / "b" / "training.json").read_text())
    for copied in ("vae_curve", "text_curve", "unet_curve"):
        assert refined[copied] == three[copied], copied
    assert [p["step"] for p in refined["refine_curve"]] == [0, 1]
    assert refined["config"]["refine_steps"] == 2
    unet = json.loads((tmp_path / "b" / "unet" / "config.json").read_text())
    assert unet["layers_per_block"] == [2, 1, 1, 1]  # grown from phase 3's one resnet a level


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_a_folder_made_otherwise_or_already_refined_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three = tmp_path / "three"
    main(["--out", str(three), *TINY])
    other = _refused(["--out", str(tmp_path / "x"), *TINY, *REFINE, "--unet-steps", "4", "--phases-from", str(three)],
                     capsys)  # fmt: skip
    assert "other phase 1-3 settings: unet_steps (3 there, 4 here)" in other
    main(["--out", str(tmp_path / "b"), *TINY, *REFINE, "--phases-from", str(three)])
    again = _refused(["--out", str(tmp_path / "y"), *TINY, *REFINE, "--phases-from", str(tmp_path / "b")], capsys)
    assert "is already refined" in again
    main(["--out", str(tmp_path / "tuned"), *TINY, "--decoder-steps", "1", "--decoder-pictures", "2"])
    tuned = _refused(["--out", str(tmp_path / "w"), *TINY, *REFINE, "--phases-from", str(tmp_path / "tuned")], capsys)
    assert "has a tuned decoder (phase 5 ran there)" in tuned
    missing = _refused(["--out", str(tmp_path / "z"), *TINY, *REFINE, "--phases-from", str(tmp_path / "nowhere")],
                       capsys)  # fmt: skip
    assert "has no readable training.json" in missing
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z", "w"))


def test_a_setting_added_later_counts_at_its_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The folder shipped before `unet_top_channels` existed: its record lacks the key, which meant 16."""
    three = tmp_path / "three"
    main(["--out", str(three), *TINY])
    record = json.loads((three / "training.json").read_text())
    del record["config"]["unet_top_channels"]
    (three / "training.json").write_text(json.dumps(record))
    wider = _refused(
        ["--out", str(tmp_path / "x"), *TINY, *REFINE, "--unet-top-channels", "32", "--phases-from", str(three)], capsys
    )
    assert "unet_top_channels (16 there, 32 here)" in wider
    main(["--out", str(tmp_path / "b"), *TINY, *REFINE, "--phases-from", str(three)])
    assert (tmp_path / "b" / UNET).exists()
