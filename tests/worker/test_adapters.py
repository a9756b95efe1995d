"""LoRA and textual inversion per request (loaded once, then cached), and instruction edits."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tests.conftest import tiny_model_dir, tiny_worker_settings
from tests.worker.direct import assert_lora_as_fused, assert_same_picture, assert_word_as_loaded, engine_latents
from tests.worker.test_engine import png
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
def adapter_files(tmp_path_factory: pytest.TempPathFactory, worker_cache: Path) -> tuple[Path, Path]:
    """The LoRA "ink" and the textual inversion "mycat" for the tiny SDXL pipeline."""
    folder = tmp_path_factory.mktemp("adapters")
    return tiny_lora(folder, worker_cache), tiny_embedding(folder / "cat.safetensors")


@pytest.fixture(scope="module")
def adapter_engine(adapter_files: tuple[Path, Path], worker_cache: Path) -> Engine:
    lora, embedding = adapter_files
    settings = tiny_worker_settings(worker_cache).model_copy(
        update={
            "adapters": {
                "ink": AdapterSpec(kind="lora", source=str(lora)),
                "mycat": AdapterSpec(kind="textual_inversion", source=str(embedding), token="<my-cat>"),
            }
        }
    )
    return Engine(settings)


def test_a_lora_at_a_scale_draws_what_diffusers_draws_with_it_fused_and_is_cached(adapter_engine: Engine) -> None:
    ink = AdapterChoice(name="ink", scale=0.5)
    plain = adapter_engine.plan(GenerationRequest(prompt="a fox", seed=3))
    inked = adapter_engine.plan(GenerationRequest(prompt="a fox", seed=3, adapters=[ink]))
    drawn = assert_lora_as_fused(adapter_engine, plain, inked, ink)
    assert_same_picture(engine_latents(adapter_engine, inked), drawn)  # again, from the cache
    assert ("tiny", "ink") in adapter_engine._adapters._loaded


def test_lora_requests_batch_separately(adapter_engine: Engine) -> None:
    with_lora = adapter_engine.plan(GenerationRequest(prompt="a", adapters=[AdapterChoice(name="ink")]))
    without = adapter_engine.plan(GenerationRequest(prompt="a"))
    assert with_lora.key != without.key


def test_a_textual_inversion_draws_what_diffusers_draws_with_it_loaded(
    adapter_engine: Engine, adapter_files: tuple[Path, Path]
) -> None:
    mycat = AdapterChoice(name="mycat")
    plain = adapter_engine.plan(GenerationRequest(prompt="a photo of <my-cat>", seed=3))
    with_word = adapter_engine.plan(GenerationRequest(prompt="a photo of <my-cat>", seed=3, adapters=[mycat]))
    assert_word_as_loaded(adapter_engine, plain, with_word, adapter_files[1], "<my-cat>")
    pipe = adapter_engine._pipe("tiny", "generate")
    assert "<my-cat>" in pipe.tokenizer.get_vocab() and "<my-cat>" in pipe.tokenizer_2.get_vocab()


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


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`")  # two adapters on one model, as meant
def test_loras_switch_on_a_unet_with_a_resnet_count_per_level() -> None:
    # The world preset's UNet has two resnets at its top level and one below (a legal diffusers config);
    # diffusers' own set_adapters cannot read that, so `activate_loras` sets the scales itself.
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.tuners.lora import LoraLayer

    from worker.adapters import activate_loras

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=(2, 1), block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4,
    )  # fmt: skip
    for name in ("ink", "wash"):
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_v"], init_lora_weights=False)
        unet.add_adapter(config, adapter_name=name)
    with pytest.raises(TypeError):  # diffusers 0.42: `layers_per_block + 1` on the tuple
        unet.set_adapters(["ink"], [0.5])

    class Pipe:
        def __init__(self) -> None:
            self.unet = unet

        def get_list_adapters(self) -> dict[str, list[str]]:
            return {"unet": ["ink", "wash"]}

    activate_loras(Pipe(), ["ink"], [0.5])
    layers = [m for m in unet.modules() if isinstance(m, LoraLayer)]
    assert layers and all(m.active_adapters == ["ink"] and m.scaling["ink"] == 0.5 * 8 / 4 for m in layers)
    activate_loras(Pipe(), ["ink", "wash"], [1.0, 0.25])
    assert all(m.active_adapters == ["ink", "wash"] for m in layers)
    assert all((m.scaling["ink"], m.scaling["wash"]) == (2.0, 0.5) for m in layers)
