"""Stable Diffusion 1.5, and its InstructPix2Pix edit model: a UNet with one CLIP encoder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.clip import ClipFamily, InstructPix2Pix
from worker.protocol import Mode
from worker.tiny import tiny_clip_vocab, tiny_text_config, tiny_unet, tiny_vae

if TYPE_CHECKING:
    pass


class SD15(ClipFamily):
    """SD1.5 and its fine-tunes: text to image, img2img and inpaint."""

    name = "sd15"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "StableDiffusionPipeline",
        "img2img": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
    }
    # SD1.5's counterpart of InstantStyle's SDXL style block (up_blocks.1.attentions.1): InstantStyle calls style
    # transfer on SD1.5 experimental, so presets may name other blocks (ip_adapter.style_blocks).
    style_blocks: ClassVar[Mapping[str, Any]] = {"up": {"block_1": [0.0, 1.0, 0.0]}}
    latent_rgb = (
        ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)),
        (0.0, 0.0, 0.0),
    )

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random SD1.5 pipeline, saved with save_pretrained."""
        return save_tiny_sd15(directory)


class SD15InstructPix2Pix(InstructPix2Pix, SD15):
    """timbrooks/instruct-pix2pix: edits an image by an instruction; it cannot draw from text alone."""

    name = "sd15-instruct"
    pipelines: ClassVar[Mapping[Mode, str]] = {"instruct": "StableDiffusionInstructPix2PixPipeline"}

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random SD1.5 InstructPix2Pix pipeline, saved with save_pretrained."""
        return save_tiny_sd15(directory, instruct=True)


def save_tiny_sd15(directory: Path, seed: int = 0, instruct: bool = False) -> Path:
    """A tiny random SD1.5-architecture pipeline (or an InstructPix2Pix one), saved with save_pretrained."""
    import torch
    from diffusers import (
        PNDMScheduler,
        StableDiffusionInstructPix2PixPipeline,
        StableDiffusionPipeline,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    # InstructPix2Pix also reads the source image's latents.
    unet = tiny_unet(in_channels=8 if instruct else 4, cross_attention_dim=32)
    cls = StableDiffusionInstructPix2PixPipeline if instruct else StableDiffusionPipeline
    pipe = cls(
        vae=tiny_vae(),
        text_encoder=CLIPTextModel(tiny_text_config()),
        tokenizer=CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77),
        unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)  # type: ignore[attr-defined,union-attr]
    return directory
