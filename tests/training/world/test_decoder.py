"""Phase 5: only the decoder learns, from the painter's own redrawings; the command runs, resumes and loads with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.world.test_train import TINY
from training.world.decoder import redraw
from training.world.model import build_text_encoder, build_unet, build_vae, pin_posterior, world_tokenizer
from training.world.scenes import Scene, Shape
from training.world.steps import TrainConfig
from training.world.train import main
from worker.pipelines import choose_placement, load_pipeline
from worker.settings import world_preset

pytestmark = pytest.mark.timeout(900)
DECODER = ["--decoder-steps", "2", "--decoder-pictures", "3"]


def _weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / part / "diffusion_pytorch_model.safetensors"))


def test_the_redrawings_are_seeded_latents_of_the_pipeline(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vae = pin_posterior(build_vae(32).eval())
    vae.register_to_config(scaling_factor=2.0)
    tokenizer = world_tokenizer()
    encoder = build_text_encoder(len(tokenizer)).eval()
    unet = build_unet(32).eval()
    scenes = [Scene(background="white", shapes=(Shape("square", "red", "large", (1, 1)),))] * 3
    images = np.stack([s.render() for s in scenes])
    config = TrainConfig(decoder_sampling_steps=2)
    first = redraw(vae, encoder, tokenizer, unet, scenes, images, config)
    again = redraw(vae, encoder, tokenizer, unet, scenes, images, config)
    assert first.shape == (3, 4, 32, 32)
    assert torch.equal(first, again)
    # Each picture has its own noise: the same scene three times gives three drawings.
    assert not torch.equal(first[0], first[1])


def test_the_command_tunes_only_the_decoder_resumes_and_its_output_loads(tmp_path: Path) -> None:
    main(["--out", str(tmp_path / "plain"), *TINY])
    main(["--out", str(tmp_path / "a"), *TINY, *DECODER])
    main(["--out", str(tmp_path / "b"), *TINY, *DECODER])
    vae = "vae/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "a" / vae).read_bytes() == (tmp_path / "b" / vae).read_bytes()
    tuned, plain = _weights(tmp_path / "a", "vae"), _weights(tmp_path / "plain", "vae")
    changed = {k.split(".")[0] for k in tuned if not torch.equal(tuned[k], plain[k])}
    assert changed == {"decoder", "post_quant_conv"}
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "a" / unet).read_bytes() == (tmp_path / "plain" / unet).read_bytes()
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert [p["step"] for p in record["decoder_curve"]] == [0, 1]
    main(["--out", str(tmp_path / "a"), *TINY, *DECODER])  # the decoder stage found: not tuned again
    again = json.loads((tmp_path / "a" / "training.json").read_text())
    assert again["seconds"]["decoder"] == record["seconds"]["decoder"]
    assert (tmp_path / "a" / vae).read_bytes() == (tmp_path / "b" / vae).read_bytes()
    # Through the worker's own loading path, as a preset naming the folder would load it.
    preset = world_preset().model_copy(update={"source": str(tmp_path / "a")})
    pipe = load_pipeline(preset, choose_placement("cpu"), tmp_path / "cache")
    image = pipe("a red circle", num_inference_steps=2, width=64, height=64, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
