"""LoRA and textual inversion per request (loaded once, then cached), and instruction edits."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tests.conftest import tiny_model_dir, tiny_worker_settings
from tests.worker.test_engine import pixels, png
from worker.engine import Engine
from worker.errors import BadRequest
from worker.protocol import AdapterChoice, EditRequest, GenerationRequest
from worker.settings import AdapterSpec, ModelPreset


def tiny_lora(folder: Path, cache: Path) -> Path:
    """A random (non-zero) LoRA for the tiny SDXL UNet, saved the way trainers save them."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir(cache) / "unet")
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    unet.add_adapter(config)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionXLPipeline.save_lora_weights(folder, unet_lora_layers=state)
    return folder / "pytorch_lora_weights.safetensors"


def tiny_embedding(path: Path) -> Path:
    """A two-vector SDXL textual inversion for the tiny encoders (hidden size 32)."""
    torch.manual_seed(1)
    save_file({"clip_l": torch.randn(2, 32), "clip_g": torch.randn(2, 32)}, str(path))
    return path


@pytest.fixture(scope="module")
def adapter_engine(tmp_path_factory: pytest.TempPathFactory, worker_cache: Path) -> Engine:
    folder = tmp_path_factory.mktemp("adapters")
    settings = tiny_worker_settings(worker_cache).model_copy(
        update={
            "adapters": {
                "ink": AdapterSpec(kind="lora", source=str(tiny_lora(folder, worker_cache))),
                "mycat": AdapterSpec(
                    kind="textual_inversion", source=str(tiny_embedding(folder / "cat.safetensors")), token="<my-cat>"
                ),
            }
        }
    )
    return Engine(settings)


def render(engine: Engine, **fields: object) -> np.ndarray:
    return pixels(engine.render(engine.plan(GenerationRequest.model_validate({"seed": 3, **fields}))))


def test_lora_changes_the_image_and_is_cached(adapter_engine: Engine) -> None:
    plain = render(adapter_engine, prompt="a fox")
    inked = render(adapter_engine, prompt="a fox", adapters=[{"name": "ink", "scale": 1.0}])
    again = render(adapter_engine, prompt="a fox", adapters=[{"name": "ink", "scale": 1.0}])
    plain_again = render(adapter_engine, prompt="a fox")
    assert np.abs(plain - inked).max() > 0
    assert np.abs(inked - again).max() <= 1
    assert np.abs(plain - plain_again).max() <= 1  # switched off again for requests without it
    assert ("tiny", "ink") in adapter_engine._adapters._loaded


def test_lora_requests_batch_separately(adapter_engine: Engine) -> None:
    with_lora = adapter_engine.plan(GenerationRequest(prompt="a", adapters=[AdapterChoice(name="ink")]))
    without = adapter_engine.plan(GenerationRequest(prompt="a"))
    assert with_lora.key != without.key


def test_textual_inversion_word_reaches_the_encoder(adapter_engine: Engine) -> None:
    without = render(adapter_engine, prompt="a photo of <my-cat>")
    learned = render(adapter_engine, prompt="a photo of <my-cat>", adapters=[{"name": "mycat"}])
    pipe = adapter_engine._pipe("tiny", "generate")
    assert "<my-cat>" in pipe.tokenizer.get_vocab() and "<my-cat>" in pipe.tokenizer_2.get_vocab()
    assert np.abs(without - learned).max() > 0


def test_unknown_adapter_is_a_clear_400(adapter_engine: Engine) -> None:
    with pytest.raises(BadRequest, match="unknown adapter 'nope'"):
        adapter_engine.plan(GenerationRequest(prompt="a", adapters=[AdapterChoice(name="nope")]))


def test_instruction_edit_model(worker_cache: Path) -> None:
    settings = tiny_worker_settings(worker_cache)
    instruct = ModelPreset(source="tiny", family="sdxl-instruct", steps=2, width=64, height=64)
    settings = settings.model_copy(update={"models": {**settings.models, "edit": instruct}})
    engine = Engine(settings)
    with pytest.raises(BadRequest, match="only edits images"):
        engine.plan(GenerationRequest(prompt="a fox", model="edit"))
    plan = engine.plan_edit(EditRequest(prompt="make it night", model="edit", seed=2), png(), None)
    assert plan.mode == "instruct"
    result = engine.render(plan)
    assert result.data[0].parameters.mode == "instruct"
    assert Image.open(io.BytesIO(__import__("base64").b64decode(result.data[0].b64_json))).size == (64, 64)
