"""Stable Diffusion 3.5 (Large, Large Turbo, Medium): an MMDiT reading prompts with CLIP-L, CLIP-G and T5-XXL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from worker.families.t5 import T5Family
from worker.protocol import Mode
from worker.tiny import tiny_clip_vocab, tiny_t5, tiny_text_config, tiny_vae


class SD3(T5Family):
    """SD3 and SD3.5: text to image, img2img and inpaint, with negative prompts."""

    name = "sd3"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "StableDiffusion3Pipeline",
        "img2img": "StableDiffusion3Img2ImgPipeline",
        "inpaint": "StableDiffusion3InpaintPipeline",
    }
    t5_tokenizer = "tokenizer_3"
    denoiser_class = "SD3Transformer2DModel"
    latent_rgb = (
        (
            (-0.0922, -0.0175, 0.0749), (0.0311, 0.0633, 0.0954), (0.1994, 0.0927, 0.0458),
            (0.0856, 0.0339, 0.0902), (0.0587, 0.0272, -0.0496), (-0.0006, 0.1104, 0.0309),
            (0.0978, 0.0306, 0.0427), (-0.0042, 0.1038, 0.1358), (-0.0194, 0.0020, 0.0669),
            (-0.0488, 0.0130, -0.0268), (0.0922, 0.0988, 0.0951), (-0.0278, 0.0524, -0.0542),
            (0.0332, 0.0456, 0.0895), (-0.0069, -0.0030, -0.0810), (-0.0596, -0.0465, -0.0293),
            (-0.1448, -0.1463, -0.1189),
        ),
        (0.2394, 0.2135, 0.1925),
    )  # fmt: skip

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random SD3-architecture pipeline, saved with save_pretrained."""
        return save_tiny_sd3(directory)


def save_tiny_sd3(directory: Path, seed: int = 0) -> Path:
    """A tiny random SD3 pipeline (two CLIP encoders with projection, T5, a 16-channel VAE)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=64,  # T5's width; the two CLIPs' 32 + 32 are padded to it
        pooled_projection_dim=64,  # the two CLIPs' pooled projections, concatenated
    )
    t5, t5_tokenizer = tiny_t5(hidden_size=64)
    tokenizer = CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77)
    pipe = StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=tiny_vae(latent_channels=16, shift_factor=0.0609, scaling_factor=1.5305),
        text_encoder=CLIPTextModelWithProjection(tiny_text_config()),
        tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(tiny_text_config()),
        tokenizer_2=tokenizer,
        text_encoder_3=t5,
        tokenizer_3=t5_tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(directory)  # type: ignore[attr-defined]
    return directory
