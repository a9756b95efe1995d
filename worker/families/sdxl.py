"""Stable Diffusion XL, and its InstructPix2Pix edit model: a UNet with two CLIP encoders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.clip import ClipFamily, InstructPix2Pix
from worker.protocol import Mode
from worker.tiny import tiny_clip_vocab, tiny_text_config, tiny_unet, tiny_vae

if TYPE_CHECKING:
    pass


class SDXL(ClipFamily):
    """SDXL base and its fine-tunes: text to image, img2img and inpaint."""

    name = "sdxl"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "StableDiffusionXLPipeline",
        "img2img": "StableDiffusionXLImg2ImgPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
    }
    dual = True
    # InstantStyle's style block: up_blocks.0.attentions.1.
    style_blocks: ClassVar[Mapping[str, Any]] = {"up": {"block_0": [0.0, 1.0, 0.0]}}
    latent_rgb = (
        ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
        (0.1084, -0.0175, -0.0011),
    )

    def load_textual_inversion(self, pipe: Any, source: str, token: str) -> None:
        """SDXL embeddings carry one vector set per text encoder (clip_l, clip_g)."""
        from safetensors.torch import load_file

        state = load_file(source)
        pipe.load_textual_inversion(
            state["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
        )
        pipe.load_textual_inversion(
            state["clip_g"], token=token, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
        )

    def unload_textual_inversion(self, pipe: Any, token: str) -> None:
        """Out of both encoders again."""
        pipe.unload_textual_inversion(token, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder)
        pipe.unload_textual_inversion(token, tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2)

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random SDXL pipeline, saved with save_pretrained."""
        return save_tiny_sdxl(directory)


class SDXLInstructPix2Pix(InstructPix2Pix, SDXL):
    """SDXL InstructPix2Pix: edits an image by an instruction; it cannot draw from text alone."""

    name = "sdxl-instruct"
    pipelines: ClassVar[Mapping[Mode, str]] = {"instruct": "StableDiffusionXLInstructPix2PixPipeline"}
    # The SDXL InstructPix2Pix pipeline still takes only the legacy per-step callback.
    legacy_callback = True

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random SDXL InstructPix2Pix pipeline, saved with save_pretrained."""
        return save_tiny_sdxl(directory, instruct=True)


def save_tiny_sdxl(directory: Path, seed: int = 0, instruct: bool = False) -> Path:
    """Build a tiny random SDXL pipeline (or an InstructPix2Pix one) and save it with save_pretrained."""
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLInstructPix2PixPipeline,
        StableDiffusionXLPipeline,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    # The shapes follow diffusers' own SDXL test components, scaled down.
    unet = tiny_unet(
        in_channels=8 if instruct else 4,  # InstructPix2Pix also reads the source image's latents
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
    )
    text_config = tiny_text_config()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    tokenizer = CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77)
    cls = StableDiffusionXLInstructPix2PixPipeline if instruct else StableDiffusionXLPipeline
    pipe = cls(
        vae=tiny_vae(),
        text_encoder=CLIPTextModel(text_config),
        text_encoder_2=CLIPTextModelWithProjection(text_config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )
    pipe.save_pretrained(directory)  # type: ignore[attr-defined,union-attr]
    return directory
