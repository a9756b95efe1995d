"""Phase 4: the grown UNet starts as phase 3 left it, and the command runs, resumes and loads with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.world.test_train import TINY
from training.world.model import build_unet
from training.world.refine import edge_map, grow_attention, grow_top, shape_map, square_draws
from training.world.scenes import Scene, Shape
from training.world.train import main
from worker.pipelines import choose_placement, load_pipeline
from worker.settings import world_preset

pytestmark = pytest.mark.timeout(900)


def test_the_grown_unet_computes_what_phase_three_left() -> None:
    torch.manual_seed(0)
    unet = build_unet(32).eval()
    grown = grow_attention(unet).eval()
    assert [type(b).__name__ for b in grown.down_blocks] == [
        "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"
    ]  # fmt: skip
    assert [type(b).__name__ for b in grown.up_blocks] == [
        "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"
    ]  # fmt: skip
    latents, hidden = torch.randn(2, 4, 32, 32), torch.randn(2, 77, 64)
    with torch.no_grad():
        before = unet(latents, torch.tensor([10, 900]), hidden).sample
        after = grown(latents, torch.tensor([10, 900]), hidden).sample
    assert torch.equal(before, after)
    # The new blocks do learn: their output projections take gradients.
    grown.train()
    grown(latents, torch.tensor([10, 900]), hidden).sample.pow(2).mean().backward()
    assert float(grown.down_blocks[1].attentions[0].proj_out.weight.grad.abs().sum()) > 0


def test_the_top_level_grows_a_resnet_a_side_and_still_computes_what_phase_three_left() -> None:
    torch.manual_seed(0)
    unet = build_unet(32).eval()
    grown = grow_top(grow_attention(unet)).eval()
    assert [len(b.resnets) for b in grown.down_blocks] == [2, 1, 1, 1]
    assert [len(b.resnets) for b in grown.up_blocks] == [2, 2, 2, 3]
    latents, hidden = torch.randn(2, 4, 32, 32), torch.randn(2, 77, 64)
    with torch.no_grad():
        before = unet(latents, torch.tensor([10, 900]), hidden).sample
        after = grown(latents, torch.tensor([10, 900]), hidden).sample
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    grown.train()
    grown(latents, torch.tensor([10, 900]), hidden).sample.pow(2).mean().backward()
    for resnet in (grown.down_blocks[0].resnets[1], grown.up_blocks[-1].resnets[1]):
        assert float(resnet.conv2.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="one resnet a block"):
        grow_top(grown)


def test_the_loss_is_weighted_up_at_the_edges_of_shapes() -> None:
    scene = Scene(background="white", shapes=(Shape("square", "red", "large", (1, 1)),))
    weights = edge_map(np.stack([scene.render()]), 4.0, 32)[0, 0]
    assert weights.shape == (32, 32)
    assert float(weights[0, 0]) == 1.0  # plain background
    assert float(weights[16, 16]) == 1.0  # inside the square
    # The square's edges (pixels 22-41) fall in latent pixels 11 and 20 along each side.
    assert float(weights[16, 11]) == 5.0 and float(weights[11, 16]) == 5.0 and float(weights[16, 20]) == 5.0


def test_the_shape_weight_falls_where_a_square_and_a_circle_differ() -> None:
    square = Scene(background="white", shapes=(Shape("square", "red", "large", (1, 1)),))
    circle = Scene(background="white", shapes=(Shape("circle", "red", "large", (1, 1)),))
    triangle = Scene(background="white", shapes=(Shape("triangle", "blue", "small", (0, 0)),))
    weights = shape_map([square, circle, triangle], 8.0, 32)
    assert weights.shape == (3, 1, 32, 32)
    # A square and a circle in the same place differ in the same pixels, whichever was asked for.
    assert torch.equal(weights[0], weights[1])
    corners = weights[0, 0]
    assert float(corners[11, 11]) == float(corners[20, 20]) == 8.0  # the square's corners
    assert float(corners[16, 16]) == float(corners[0, 0]) == 0.0  # inside, and the background
    assert float(weights[2].sum()) == 0.0  # a triangle is left to the edge weights


def test_scenes_with_squares_are_drawn_more_often() -> None:
    circle = Scene(background="white", shapes=(Shape("circle", "red", "large", (1, 1)),))
    square = Scene(background="white", shapes=(Shape("square", "red", "large", (1, 1)),))
    two = Scene(background="white", shapes=(Shape("square", "red", "small", (0, 0)),
                                            Shape("square", "blue", "small", (2, 2)),
                                            Shape("triangle", "green", "small", (0, 2))))  # fmt: skip
    draws = square_draws([circle, square, two], 2.0)
    assert draws.dtype == torch.float64 and draws.tolist() == [1.0, 3.0, 5.0]


def test_the_command_refines_resumes_and_its_output_loads(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    refine = ["--refine-steps", "2"]
    main(["--out", str(tmp_path / "a"), *TINY, *refine])
    main(["--out", str(tmp_path / "b"), *TINY, *refine])
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "a" / unet).read_bytes() == (tmp_path / "b" / unet).read_bytes()
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert [p["step"] for p in record["refine_curve"]] == [0, 1]
    main(["--out", str(tmp_path / "a"), *TINY, *refine])  # the refine stage found: not trained again
    assert (
        json.loads((tmp_path / "a" / "training.json").read_text())["seconds"]["refine"] == record["seconds"]["refine"]
    )
    # Through the worker's own loading path, as a preset naming the folder would load it.
    preset = world_preset().model_copy(update={"source": str(tmp_path / "a")})
    pipe = load_pipeline(preset, choose_placement("cpu"), tmp_path / "cache")
    # The defaults (the shipped weights' settings): a second resnet at the top level, no grown attention.
    assert [len(b.resnets) for b in pipe.unet.down_blocks] == [2, 1, 1, 1]
    assert type(pipe.unet.down_blocks[1]).__name__ == "DownBlock2D"
    image = pipe("a red circle", num_inference_steps=2, width=64, height=64, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()

    main(["--out", str(tmp_path / "plain"), *TINY, *refine, "--refine-grow-top", "no", "--refine-grow", "yes"])
    plain = StableDiffusionPipeline.from_pretrained(tmp_path / "plain")
    assert [len(b.resnets) for b in plain.unet.down_blocks] == [1, 1, 1, 1]
    assert type(plain.unet.down_blocks[1]).__name__ == "CrossAttnDownBlock2D"
    assert (tmp_path / "plain" / unet).read_bytes() != (tmp_path / "a" / unet).read_bytes()


def test_restarts_go_on_from_phase_four_and_resume_with_the_rounds_before_kept(tmp_path: Path) -> None:
    refine = ["--refine-steps", "2", "--decoder-steps", "0"]
    main(["--out", str(tmp_path / "four"), "--work", str(tmp_path / "work"), *TINY, *refine])
    four = json.loads((tmp_path / "four" / "training.json").read_text())
    assert four["polish_curve"] == [] and "polish" not in four["seconds"]
    polish = ["--polish-steps", "3", "--polish-lr", "1e-3", "--restarts", "1"]
    main(["--out", str(tmp_path / "a"), "--work", str(tmp_path / "work"), *TINY, *refine, *polish])
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    # Phase 4's stage is found, not run again; the restart runs its own steps on top of it.
    assert record["seconds"]["refine"] == four["seconds"]["refine"]
    assert [p["step"] for p in record["polish_curve"]] == [0, 1, 2]
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "a" / unet).read_bytes() != (tmp_path / "four" / unet).read_bytes()
    # A run from scratch gives the same weights (seeded), and a rerun finds the restart's stage.
    main(["--out", str(tmp_path / "b"), *TINY, *refine, *polish])
    assert (tmp_path / "a" / unet).read_bytes() == (tmp_path / "b" / unet).read_bytes()
    main(["--out", str(tmp_path / "a"), "--work", str(tmp_path / "work"), *TINY, *refine, *polish])
    again = json.loads((tmp_path / "a" / "training.json").read_text())
    assert again["seconds"]["polish"] == record["seconds"]["polish"]
    # Resumed from phase 4's stage folder, the UNet's config names no folder of this machine (nor did a whole run's).
    for run in ("a", "b"):
        assert "_name_or_path" not in json.loads((tmp_path / run / "unet" / "config.json").read_text())
    # Still the grown UNet: the restart grows nothing more.
    assert [len(b.resnets) for b in load_unet(tmp_path / "a").down_blocks] == [2, 1, 1, 1]
    # A second round goes on from the first's stage (found, not run again), on generators of its own.
    two_rounds = [*polish[:-1], "2"]
    main(["--out", str(tmp_path / "c"), "--work", str(tmp_path / "work"), *TINY, *refine, *two_rounds])
    twice = json.loads((tmp_path / "c" / "training.json").read_text())
    assert twice["seconds"]["polish"] == record["seconds"]["polish"] and "polish-2" in twice["seconds"]
    assert [(p["round"], p["step"]) for p in twice["polish_curve"]] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert [p["loss"] for p in twice["polish_curve"][:3]] == [p["loss"] for p in record["polish_curve"]]
    assert (tmp_path / "c" / unet).read_bytes() != (tmp_path / "a" / unet).read_bytes()
    main(["--out", str(tmp_path / "d"), *TINY, *refine, *two_rounds])
    assert (tmp_path / "c" / unet).read_bytes() == (tmp_path / "d" / unet).read_bytes()
    # From `--squares-from` on, a round draws scenes with squares more often; the rounds before keep their stages.
    three = [*polish[:-1], "3", "--squares-from", "3"]
    main(["--out", str(tmp_path / "e"), "--work", str(tmp_path / "work"), *TINY, *refine, *three])
    thrice = json.loads((tmp_path / "e" / "training.json").read_text())
    assert thrice["seconds"]["polish-2"] == twice["seconds"]["polish-2"] and "polish-3" in thrice["seconds"]
    main(["--out", str(tmp_path / "f"), "--work", str(tmp_path / "work"), *TINY, *refine, *three,
          "--squares-weight", "0"])  # fmt: skip
    alike = json.loads((tmp_path / "f" / "training.json").read_text())
    assert alike["seconds"]["polish-2"] == twice["seconds"]["polish-2"]
    assert (tmp_path / "e" / unet).read_bytes() != (tmp_path / "f" / unet).read_bytes()
    main(["--out", str(tmp_path / "g"), *TINY, *refine, *three])
    assert (tmp_path / "e" / unet).read_bytes() == (tmp_path / "g" / unet).read_bytes()


def load_unet(folder: Path) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(folder / "unet")
