"""The tiny pipeline goes through the same loader that users' model ids take."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_model_dir
from worker.errors import ModelUnavailable
from worker.families.sdxl import save_tiny_sdxl
from worker.pipelines import Placement, load_pipeline
from worker.settings import ModelPreset

CPU = Placement(device="cpu", dtype=torch.float32)


def test_saved_pipeline_loads_through_the_user_loader(tmp_path: Path) -> None:
    folder = save_tiny_sdxl(tmp_path / "my-model")
    preset = ModelPreset(source=str(folder), steps=2, width=64, height=64)
    pipe = load_pipeline(preset, Placement(device="cpu", dtype=torch.float32), tmp_path / "cache")
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    generator = torch.Generator().manual_seed(7)
    image = pipe("a red fox", num_inference_steps=2, width=64, height=64, generator=generator).images[0]
    assert image.size == (64, 64)


def test_tiny_preset_is_built_once(tmp_path: Path) -> None:
    first = tiny_model_dir(tmp_path)
    stamp = (first / "model_index.json").stat().st_mtime_ns
    assert tiny_model_dir(tmp_path) == first
    assert (first / "model_index.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tiny-")]


def test_tiny_tokenizer_covers_any_text(tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    folder = tiny_model_dir(tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    ids = tokenizer("リスの王 'OPEN'").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids[1:-1]


def test_a_single_file_checkpoint_loads_through_the_user_loader(tmp_path: Path) -> None:
    """A FLUX-style single file holds only the transformer; the rest comes from `config`."""
    from safetensors.torch import save_file

    from worker.pipelines import tiny_dir

    folder = tiny_dir(tmp_path / "cache", "flux")
    reference = load_pipeline(
        ModelPreset(source=str(folder), family="flux", width=64, height=64), CPU, tmp_path / "cache"
    ).transformer
    torch.manual_seed(5)
    changed = {k: v + 0.01 * torch.randn_like(v) for k, v in reference.state_dict().items()}  # a "fine-tune"
    save_file({k: v.contiguous() for k, v in changed.items()}, str(tmp_path / "my-flux.safetensors"))
    preset = ModelPreset(
        source=str(tmp_path / "my-flux.safetensors"), family="flux", config=str(folder), width=64, height=64
    )
    pipe = load_pipeline(preset, CPU, tmp_path / "cache")
    assert type(pipe).__name__ == "FluxPipeline"
    loaded = pipe.transformer.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in changed.items())  # the file's weights, not the folder's
    image = pipe("a fox", num_inference_steps=2, width=64, height=64, max_sequence_length=32).images[0]
    assert image.size == (64, 64)
    with pytest.raises(ModelUnavailable, match=r"could not load as a whole flux pipeline .*: set config = the hub id"):
        load_pipeline(preset.model_copy(update={"config": None}), CPU, tmp_path / "cache")
