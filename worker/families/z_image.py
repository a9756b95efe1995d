"""Z-Image (Turbo): Alibaba's 6B single-stream diffusion transformer reading prompts with Qwen3 (Apache-2.0).

Turbo draws in 8 steps at guidance 0 and fits a 16 GB GPU in bf16, which makes
it the open model to suggest for 16-24 GB cards. It draws from text, redraws
a picture (img2img) and repaints a masked region (inpaint); it reads no
reference pictures. Its VAE is FLUX.1's (16 channels), and its latents reach
the step callback unpacked. Its encoder is an LLM: the prompt is wrapped in
Qwen3's chat template (thinking on, as diffusers renders it) and read whole up
to 512 tokens; a longer one is a 400 naming the limit (`ChatPromptFamily`).
At guidance 0 there is no CFG, so a negative prompt changes nothing; the
undistilled base model uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from worker.families.base import ModeInputs
from worker.families.chat import ChatPromptFamily, tiny_qwen3_tokenizer
from worker.families.flux import Flux
from worker.protocol import Mode

Z_IMAGE_TOKEN_LIMIT = 512  # diffusers' max_sequence_length for Z-Image


class ZImage(ChatPromptFamily):
    """Z-Image and Z-Image-Turbo: text to image, img2img and inpaint."""

    name = "z-image"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "ZImagePipeline",
        "img2img": "ZImageImg2ImgPipeline",
        "inpaint": "ZImageInpaintPipeline",
    }
    denoiser = "transformer"
    denoiser_class = "ZImageTransformer2DModel"
    size_multiple = 16  # an 8x VAE and 2x2 patches
    token_limit = Z_IMAGE_TOKEN_LIMIT
    template_options: ClassVar[Mapping[str, Any]] = {"enable_thinking": True}
    latent_rgb = Flux.latent_rgb  # FLUX.1's VAE, so FLUX.1's preview factors

    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """As the base family, with the size always given (the pipelines default to 1024², not the image's)."""
        size = inputs.size
        return {**super().mode_kwargs(mode, inputs), "width": size.width, "height": size.height}

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random Z-Image pipeline, saved with save_pretrained."""
        from diffusers import ZImagePipeline

        pipe: Any = ZImagePipeline(**tiny_z_image_components())
        pipe.save_pretrained(directory)
        return directory


def tiny_z_image_components(seed: int = 0) -> dict[str, Any]:
    """The parts of a tiny Z-Image: FLUX.1's 16-channel VAE layout, a two-layer Qwen3 and a narrow transformer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    from worker.tiny import tiny_vae

    torch.manual_seed(seed)
    tokenizer = tiny_qwen3_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=Z_IMAGE_TOKEN_LIMIT,
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
    )  # fmt: skip
    transformer: Any = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=1, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0,
        axes_dims=[8, 4, 4], axes_lens=[2 * Z_IMAGE_TOKEN_LIMIT, 64, 64],
    )  # fmt: skip
    with torch.no_grad():
        # Created with torch.empty: uninitialised memory can hold NaNs, which would then be saved.
        transformer.x_pad_token.fill_(1.0)
        transformer.cap_pad_token.fill_(1.0)
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": tiny_vae(latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159),
        "text_encoder": Qwen3Model(config),
        "tokenizer": tokenizer,
        "transformer": transformer,
    }
