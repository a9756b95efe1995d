"""FLUX.2 [klein] (4B, 9B and their undistilled base models): a rectified-flow transformer reading prompts with Qwen3.

One pipeline draws from text and edits from reference pictures: their latents
ride beside the noise (as Kontext's do) rather than being noised into the
start, so an edit without a mask is this family's instruction edit, at the
plan's size, with no strength. Every picture of a request is a reference, in
order, the edited one first (up to 4, as Black Forest Labs documents for
[klein]); a new picture may be drawn from references alone. A masked edit uses
its inpaint pipeline, which reads the source as its reference, and one more
picture as the reference for the masked area.

Its encoder is an LLM: the prompt is wrapped in Qwen3's chat template
(thinking off) and counted as `ChatPromptFamily` does: read whole up to 512
tokens, a 400 past them. The distilled models (4 steps) ignore guidance; the
base models use it as real CFG against an empty prompt, so neither reads a
negative prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.errors import BadRequest
from worker.families.base import ModeInputs
from worker.families.chat import ChatPromptFamily, tiny_qwen3_tokenizer
from worker.protocol import Mode

if TYPE_CHECKING:
    from PIL import Image

    from worker.settings import ModelPreset

# diffusers' max_sequence_length for Klein: the most tokens of templated prompt it gives Qwen3.
KLEIN_TOKEN_LIMIT = 512
# Flux2ImageProcessor.check_image_input refuses references outside these bounds with a bare ValueError.
REFERENCE_MIN_SIDE, REFERENCE_MAX_RATIO = 64, 8


class Flux2Klein(ChatPromptFamily):
    """FLUX.2 [klein]: text to image, reference edits (instruct) from up to 4 pictures, and inpaint."""

    name = "flux2-klein"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "Flux2KleinPipeline",
        "instruct": "Flux2KleinPipeline",
        "inpaint": "Flux2KleinInpaintPipeline",
    }
    denoiser = "transformer"
    denoiser_class = "Flux2Transformer2DModel"
    negative_prompts = False
    size_multiple = 16  # an 8x VAE and 2x2 patches
    token_limit = KLEIN_TOKEN_LIMIT
    template_options: ClassVar[Mapping[str, Any]] = {"enable_thinking": False}
    max_images = 4
    # 32 channels patchified 2x2 into 128-wide tokens, in FLUX.1's (channel, row, column) order.
    packed_latents = True
    # ComfyUI's published FLUX.2 preview factors. They read the latents the transformer denoises
    # (batch-normalised, 128 channels) unpatchified to 32 in this same (channel, row, column) order,
    # which is what latent_image makes of the callback's latents: no VAE statistics are needed.
    latent_rgb = (
        (
            (0.0058, 0.0113, 0.0073), (0.0495, 0.0443, 0.0836), (-0.0099, 0.0096, 0.0644),
            (0.2144, 0.3009, 0.3652), (0.0166, -0.0039, -0.0054), (0.0157, 0.0103, -0.0160),
            (-0.0398, 0.0902, -0.0235), (-0.0052, 0.0095, 0.0109), (-0.3527, -0.2712, -0.1666),
            (-0.0301, -0.0356, -0.0180), (-0.0107, 0.0078, 0.0013), (0.0746, 0.0090, -0.0941),
            (0.0156, 0.0169, 0.0070), (-0.0034, -0.0040, -0.0114), (0.0032, 0.0181, 0.0080),
            (-0.0939, -0.0008, 0.0186), (0.0018, 0.0043, 0.0104), (0.0284, 0.0056, -0.0127),
            (-0.0024, -0.0022, -0.0030), (0.1207, -0.0026, 0.0065), (0.0128, 0.0101, 0.0142),
            (0.0137, -0.0072, -0.0007), (0.0095, 0.0092, -0.0059), (0.0000, -0.0077, -0.0049),
            (-0.0465, -0.0204, -0.0312), (0.0095, 0.0012, -0.0066), (0.0290, -0.0034, 0.0025),
            (0.0220, 0.0169, -0.0048), (-0.0332, -0.0457, -0.0468), (-0.0085, 0.0389, 0.0609),
            (-0.0076, 0.0003, -0.0043), (-0.0111, -0.0460, -0.0614),
        ),
        (-0.0329, -0.0718, -0.0851),
    )  # fmt: skip

    # -- pictures in -----------------------------------------------------------
    def image_limit(self, preset: ModelPreset, mode: Mode, editing: bool) -> int:
        """Every picture is a reference in an instruction edit; an inpaint reads the source and one reference."""
        if mode == "inpaint" and editing:
            return 2
        return super().image_limit(preset, mode, editing)

    def check_pictures(self, pictures: list[Image.Image]) -> None:
        """A clear 400 for a picture the FLUX.2 image processor would refuse with a bare ValueError."""
        for index, picture in enumerate(pictures, start=1):
            width, height = picture.size
            if min(width, height) < REFERENCE_MIN_SIDE or max(width, height) > REFERENCE_MAX_RATIO * min(width, height):
                raise BadRequest(
                    f"{self.name} reads pictures at least {REFERENCE_MIN_SIDE} px a side and at most "
                    f"{REFERENCE_MAX_RATIO}:1; picture {index} is {width}x{height}",
                    param="image",
                )

    # -- per-mode arguments --------------------------------------------------
    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """The plan's size always (the pipelines default to 1024²); every picture as a reference, in order."""
        size = inputs.size
        kwargs: dict[str, Any] = {"width": size.width, "height": size.height}
        if mode == "inpaint" and inputs.references:
            kwargs["image_reference"] = inputs.references[0]
        if mode != "instruct":
            return {**super().mode_kwargs(mode, inputs), **kwargs}
        self.check_pictures(inputs.pictures)
        # One list for the whole batch: each sample reads every reference (a list per sample is not a batch here).
        return {**kwargs, "image": inputs.pictures}

    # -- tests ---------------------------------------------------------------
    def build_tiny(self, directory: Path) -> Path:
        """A tiny random FLUX.2 [klein] pipeline (distilled, as the 4B is), saved with save_pretrained."""
        from diffusers import Flux2KleinPipeline

        pipe: Any = Flux2KleinPipeline(**tiny_klein_components(), is_distilled=True)
        pipe.save_pretrained(directory)
        return directory


def tiny_klein_components(seed: int = 0) -> dict[str, Any]:
    """The parts of a tiny Klein pipeline: the real 32-channel VAE layout and Qwen3's layer taps, little else.

    diffusers stacks Qwen3's hidden states 9, 18 and 27, so the encoder keeps 27 (narrow) layers and the
    transformer reads three times its width.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    tokenizer = tiny_qwen3_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=27, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=KLEIN_TOKEN_LIMIT,
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
    )  # fmt: skip
    return {**tiny_flux2_parts(guidance_embeds=False), "text_encoder": Qwen3ForCausalLM(config), "tokenizer": tokenizer}


def tiny_flux2_parts(guidance_embeds: bool) -> dict[str, Any]:
    """A tiny FLUX.2 transformer (reading three stacked 16-wide encoder layers), VAE and scheduler."""
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel

    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=3 * 16, timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4], guidance_embeds=guidance_embeds,
    )  # fmt: skip
    vae = AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(16, 32), layers_per_block=1, latent_channels=32, norm_num_groups=16, sample_size=64,
        use_quant_conv=False, use_post_quant_conv=False,
    )  # fmt: skip
    return {"scheduler": FlowMatchEulerDiscreteScheduler(), "vae": vae, "transformer": transformer}
