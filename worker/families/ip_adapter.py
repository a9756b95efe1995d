"""IP-Adapter on the UNet families (SDXL, SD1.5): reference pictures as prompts, for a subject or a style.

A preset's `ip_adapter` names the weights and the CLIP vision encoder; they load
with the preset (diffusers' `load_ip_adapter`), into the UNet every mode of
that preset shares. Once loaded, the UNet wants image embeddings on every
call, so a request without references gets a blank picture's at scale 0,
which adds exactly nothing: its picture is the one the preset draws without an
adapter. A subject reference reaches every attention block at the subject
strength; a style reference reaches only the style blocks (InstantStyle), at
the style strength.

The embeddings are made here, per batch, rather than by the pipeline: diffusers
repeats a pipeline's own embeddings by `num_images_per_prompt`, not by the
number of prompts, and egaku batches prompts, one image each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from worker.families.base import ModeInputs
    from worker.settings import IPAdapterSpec

# The file and encoder folder of a tiny IP-Adapter, laid out as h94/IP-Adapter's are.
TINY_WEIGHTS, TINY_ENCODER = "ip-adapter.safetensors", "image_encoder"


def load_ip_adapter(pipe: Any, spec: IPAdapterSpec, cache_dir: Path) -> None:
    """Load the preset's IP-Adapter and its image encoder into the pipeline (a tiny one is built on first use)."""
    if spec.source != "tiny":
        pipe.load_ip_adapter(
            spec.source, subfolder=spec.subfolder, weight_name=spec.weight_name, image_encoder_folder=spec.image_encoder
        )
        return
    from worker.pipelines import built_once

    config = json.dumps(dict(pipe.unet.config), sort_keys=True, default=str)
    folder = cache_dir / f"tiny-ip-adapter-{hashlib.sha256(config.encode()).hexdigest()[:12]}"
    built_once(folder, lambda directory: save_tiny_ip_adapter(directory, pipe.unet), TINY_WEIGHTS)
    pipe.load_ip_adapter(str(folder), subfolder="", weight_name=TINY_WEIGHTS, image_encoder_folder=TINY_ENCODER)


def scaled(blocks: Mapping[str, Any], scale: float) -> dict[str, Any]:
    """A block map for set_ip_adapter_scale ({"up": {"block_0": [0, 1, 0]}}) with every strength times `scale`."""

    def times(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: times(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [times(inner) for inner in value]
        return float(value) * scale

    return times(blocks)  # type: ignore[no-any-return]


def ip_adapter_kwargs(
    pipe: Any, inputs: ModeInputs, spec: IPAdapterSpec, style_blocks: Mapping[str, Any], guidance: float
) -> dict[str, Any]:
    """The batch's image embeddings (every reference, in order) with the adapter set to the request's strength."""
    from PIL import Image

    references = list(inputs.references)
    scale = inputs.reference_scale if references and inputs.reference_scale is not None else 0.0
    if references and inputs.reference_role == "style":
        pipe.set_ip_adapter_scale(scaled(spec.style_blocks or style_blocks, scale))
    else:
        pipe.set_ip_adapter_scale(scale)
    # The pipeline's own test for classifier-free guidance, which decides whether it splits the embeddings.
    guided = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
    return {
        "ip_adapter_image_embeds": embeddings(pipe, references or [Image.new("RGB", (64, 64))], inputs.count, guided)
    }


def embeddings(pipe: Any, pictures: list[Image.Image], count: int, guided: bool) -> list[Any]:
    """One adapter's embeddings of `pictures` for `count` images: [negatives; positives] when guided."""
    return list(pipe.prepare_ip_adapter_image_embeds([pictures], None, pipe.device, count, guided))


def blank_condition(pipe: Any, batch: int) -> dict[str, Any]:
    """The UNet's image conditioning when no picture is meant (training a word): a blank picture at scale 0."""
    from PIL import Image

    pipe.set_ip_adapter_scale(0.0)
    return {"image_embeds": embeddings(pipe, [Image.new("RGB", (64, 64))], batch, guided=False)}


def save_tiny_ip_adapter(directory: Path, unet: Any, seed: int = 0) -> Path:
    """A random IP-Adapter for `unet` (key-value projections for each cross-attention, an image projection) and a
    tiny CLIP vision encoder, saved in the layout `load_ip_adapter` reads."""
    import torch
    from diffusers.models.embeddings import ImageProjection
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = unet.config
    cross, widths = config.cross_attention_dim, list(config.block_out_channels)
    state: dict[str, torch.Tensor] = {}
    # diffusers reads the cross-attentions' projections under ids 1, 3, 5... in processor order (the original
    # checkpoints numbered the self-attentions too); each projects the image tokens to its block's width.
    cross_attentions = [name for name in unet.attn_processors if not name.endswith("attn1.processor")]
    for index, name in enumerate(cross_attentions):
        block = int(name.split(".")[1]) if not name.startswith("mid_block") else -1
        width = widths[-1] if block < 0 else (widths[::-1] if name.startswith("up_blocks") else widths)[block]
        for part in ("to_k_ip", "to_v_ip"):
            state[f"ip_adapter.{2 * index + 1}.{part}.weight"] = torch.randn(width, cross) * 0.2
    embed = 16
    projection = ImageProjection(cross_attention_dim=cross, image_embed_dim=embed, num_image_text_embeds=4)
    for key, value in projection.state_dict().items():
        state[f"image_proj.{key.replace('image_embeds', 'proj')}"] = value.contiguous()
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state, directory / TINY_WEIGHTS)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=embed)  # fmt: skip
    CLIPVisionModelWithProjection(vision).save_pretrained(directory / TINY_ENCODER)
    return directory
