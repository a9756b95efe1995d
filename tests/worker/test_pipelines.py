"""The tiny pipeline goes through the same loader that users' model ids take."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import tiny_model_dir
from worker.families.sdxl import save_tiny_sdxl
from worker.pipelines import Placement, load_pipeline
from worker.settings import ModelPreset


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
