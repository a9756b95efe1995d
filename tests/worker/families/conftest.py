"""Engines over the tiny transformer families (FLUX.1, Kontext, SD3), each with a LoRA of its own; and what the
family tests share: spies on what reaches a module, and distinct pictures to send as references."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
from PIL import Image

from tests.conftest import tiny_worker_settings
from worker.engine import Engine
from worker.families import family_for
from worker.pipelines import tiny_dir
from worker.settings import AdapterSpec, ModelPreset

TRANSFORMER_FAMILIES = ("flux", "flux-kontext", "sd3")

T = TypeVar("T")


def keyword_inputs(module: torch.nn.Module, run: Callable[[], T]) -> tuple[T, list[dict[str, Any]]]:
    """What `run` returns, and the keyword arguments `module` (an encoder, a denoiser) got, call by call."""
    seen: list[dict[str, Any]] = []
    hook = module.register_forward_pre_hook(lambda _m, _args, kwargs: seen.append(dict(kwargs)), with_kwargs=True)
    try:
        return run(), seen
    finally:
        hook.remove()


def encoded_images(pipe: object) -> tuple[list[torch.Tensor], object]:
    """Capture what the VAE encoder receives (each picture, as the pipeline prepared it)."""
    seen: list[torch.Tensor] = []
    hook = pipe.vae.encoder.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))  # type: ignore[attr-defined]
    return seen, hook


def reached(pipe: Any, run: Callable[[], T]) -> tuple[T, list[torch.Tensor]]:
    """What `run` returns, and each picture the VAE encoded while it ran, in order."""
    seen, hook = encoded_images(pipe)
    try:
        return run(), seen
    finally:
        hook.remove()  # type: ignore[attr-defined]


def pictures(*sizes: tuple[int, int]) -> list[Image.Image]:
    """Distinct pictures of the given sizes (each its own colours and mark), as references are."""
    made = []
    for index, size in enumerate(sizes):
        picture = Image.new("RGB", size, (40 * index, 200 - 30 * index, 90))
        picture.paste(Image.new("RGB", (16, 16), (255, 20 * index, 0)), (8 * index, 8))
        made.append(picture)
    return made


def png_of(image: Image.Image) -> bytes:
    """PNG bytes of a picture."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_transformer_lora(family: str, cache: Path, folder: Path, **components: object) -> Path:
    """A random (non-zero) LoRA for a tiny family's transformer, saved the way trainers save them.

    `components` are pipeline parts the loader cannot build here (Qwen-Image-Edit's processor).
    """
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(0)
    cls = family_for(family).pipeline_class(family_for(family).base)
    pipe = cls.from_pretrained(tiny_dir(cache, family), **components)
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    pipe.transformer.add_adapter(config)
    cls.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer))
    return folder / "pytorch_lora_weights.safetensors"


def family_engine(family: str, cache: Path, folder: Path, **preset: object) -> Engine:
    """An engine serving one tiny preset of `family` (named after it) with a LoRA "ink" and a textual inversion."""
    tiny = ModelPreset.model_validate(
        {"source": "tiny", "family": family, "steps": 2, "guidance": 3.5, "width": 64, "height": 64,
         "max_pixels": 128 * 128, **preset}
    )  # fmt: skip
    settings = tiny_worker_settings(
        cache,
        warmup=False,
        models={family: tiny},
        default_model=family,
        adapters={
            "ink": AdapterSpec(kind="lora", source=str(tiny_transformer_lora(family, cache, folder))),
            "mycat": AdapterSpec(kind="textual_inversion", source=str(folder / "unused.safetensors"), token="<c>"),
        },
    )
    return Engine(settings)


@pytest.fixture(scope="module", params=TRANSFORMER_FAMILIES)
def t5_engine(request: pytest.FixtureRequest, worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine per transformer family, built once per module."""
    return family_engine(request.param, worker_cache, tmp_path_factory.mktemp(request.param))
