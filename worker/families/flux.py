"""FLUX.1 (dev, schnell and fine-tunes): a rectified-flow transformer reading prompts with CLIP-L and T5-XXL.

Its latents are packed: 2x2 patches of 16 channels become one 64-wide token,
so previews unpack them first. Guidance is distilled into the model (dev:
about 3.5; schnell ignores it), and it reads no negative prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from worker.families.t5 import T5Family
from worker.protocol import Mode
from worker.tiny import tiny_clip_vocab, tiny_t5, tiny_text_config, tiny_vae


class Flux(T5Family):
    """FLUX.1: text to image, img2img and inpaint."""

    name = "flux"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "FluxPipeline",
        "img2img": "FluxImg2ImgPipeline",
        "inpaint": "FluxInpaintPipeline",
    }
    denoiser_class = "FluxTransformer2DModel"
    packed_latents = True
    negative_prompts = False
    # diffusers can load a CLIP-L word into FLUX, but FLUX reads a prompt's meaning through T5: CLIP gives only
    # the pooled vector, so a word learned there barely moves the picture. A T5 vector is not textual inversion
    # as diffusers loads it, so /teach refuses FLUX rather than train a word that does not show.
    teach_refusal = (
        "FLUX reads a prompt's meaning through T5, and its CLIP encoder gives only one pooled vector, so a word "
        "learned for CLIP would barely change the picture; teach the word on an sd15 or sdxl model"
    )
    latent_rgb = (
        (
            (-0.0346, 0.0244, 0.0681), (0.0034, 0.0210, 0.0687), (0.0275, -0.0668, -0.0433),
            (-0.0174, 0.0160, 0.0617), (0.0859, 0.0721, 0.0329), (0.0004, 0.0383, 0.0115),
            (0.0405, 0.0861, 0.0915), (-0.0236, -0.0185, -0.0259), (-0.0245, 0.0250, 0.1180),
            (0.1008, 0.0755, -0.0421), (-0.0515, 0.0201, 0.0011), (0.0428, -0.0012, -0.0036),
            (0.0817, 0.0765, 0.0749), (-0.1264, -0.0522, -0.1103), (-0.0280, -0.0881, -0.0499),
            (-0.1262, -0.0982, -0.0778),
        ),
        (-0.0329, -0.0718, -0.0851),
    )  # fmt: skip

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random FLUX.1 pipeline, saved with save_pretrained."""
        from diffusers import FluxPipeline

        return save_tiny_flux(directory, FluxPipeline)


def save_tiny_flux(directory: Path, cls: type, seed: int = 0) -> Path:
    """A tiny random FLUX.1-architecture pipeline of class `cls` (FLUX.1 or Kontext), saved with save_pretrained.

    The VAE keeps FLUX's 16 latent channels (so previews use the real factors) and its shift and scale.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,
    )
    t5, t5_tokenizer = tiny_t5(hidden_size=32)
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=tiny_vae(latent_channels=16, shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=CLIPTextModel(tiny_text_config()),
        tokenizer=CLIPTokenizer(vocab=tiny_clip_vocab(), merges=[], model_max_length=77),
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(directory)
    return directory
