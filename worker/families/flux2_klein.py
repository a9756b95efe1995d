"""FLUX.2 [klein] (4B, 9B and their undistilled base models): a rectified-flow transformer reading prompts with Qwen3.

One pipeline draws from text and edits from a reference image: the
reference's latents ride beside the noise (as Kontext's do) rather than
being noised into the start, so an edit without a mask is this family's
instruction edit, at the plan's size, with no strength. A masked edit uses
its inpaint pipeline, which already reads the source as its reference.

Its encoder is an LLM: the prompt is wrapped in Qwen3's chat template
(thinking off), and diffusers cuts the templated text at 512 tokens with no
word said. Here it is counted first: up to the limit every token reaches the
encoder (the sequence is always padded to the limit, so a seed draws the same
image whatever shares its batch); past it the request gets a 400 naming the
limit. The distilled models (4 steps) ignore guidance; the base models use it
as real CFG against an empty prompt, so neither reads a negative prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.errors import BadRequest
from worker.families.base import Family, ModeInputs
from worker.protocol import Mode

if TYPE_CHECKING:
    from worker.settings import ModelPreset

# diffusers' max_sequence_length for Klein: the most tokens of templated prompt it gives Qwen3.
KLEIN_TOKEN_LIMIT = 512
# Flux2ImageProcessor.check_image_input refuses references outside these bounds with a bare ValueError.
REFERENCE_MIN_SIDE, REFERENCE_MAX_RATIO = 64, 8

# Qwen3's chat template, reduced to what diffusers renders: user turns, then the assistant's
# turn opened with an empty thinking block (enable_thinking=False). The tiny tokenizer carries it.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


class Flux2Klein(Family):
    """FLUX.2 [klein]: text to image, reference edits (instruct) and inpaint."""

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

    # -- prompts -------------------------------------------------------------
    def limit(self, preset: ModelPreset) -> int:
        """The preset's token limit (template included): its own `prompt_tokens` when lower than the family's."""
        return min(preset.prompt_tokens or KLEIN_TOKEN_LIMIT, KLEIN_TOKEN_LIMIT)

    def templated(self, pipe: Any, text: str) -> int:
        """How many tokens Qwen3 reads for `text`: the prompt in its chat template, as diffusers renders it."""
        messages = [{"role": "user", "content": text}]
        chat = pipe.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        return len(pipe.tokenizer(chat).input_ids)

    def prompt_group(self, pipe: Any, texts: list[str], preset: ModelPreset) -> int:
        """Every text must fit the encoder whole, template and all; the 400 counts the user's own tokens."""
        frame = self.templated(pipe, "")
        counts = [self.templated(pipe, text) - frame for text in texts]
        self.refuse_long_prompts(counts, self.limit(preset) - frame, "Qwen3")
        return 0

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """The prompts as text, read up to the limit (Klein has no negative prompt to pass)."""
        return {"prompt": prompts, "max_sequence_length": self.limit(preset)}

    # -- per-mode arguments --------------------------------------------------
    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """The plan's size always (the pipelines default to 1024²); one reference image for every sample."""
        size = inputs.size
        kwargs: dict[str, Any] = {"width": size.width, "height": size.height}
        if mode != "instruct":
            return {**super().mode_kwargs(mode, inputs), **kwargs}
        if min(size.width, size.height) < REFERENCE_MIN_SIDE or (
            max(size.width, size.height) > REFERENCE_MAX_RATIO * min(size.width, size.height)
        ):
            raise BadRequest(
                f"{self.name} edits pictures at least {REFERENCE_MIN_SIDE} px a side and at most "
                f"{REFERENCE_MAX_RATIO}:1; this one is {size}",
                param="image",
            )
        # A list here would be several references for each sample, not one per sample.
        return {**kwargs, "image": inputs.image}

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
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from worker.families.qwen_image import tiny_qwen_tokenizer

    torch.manual_seed(seed)
    tokenizer = tiny_qwen_tokenizer()
    tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=27, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=KLEIN_TOKEN_LIMIT,
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
    )  # fmt: skip
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=3 * 16, timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False,
    )  # fmt: skip
    vae = AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(16, 32), layers_per_block=1, latent_channels=32, norm_num_groups=16, sample_size=64,
        use_quant_conv=False, use_post_quant_conv=False,
    )  # fmt: skip
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "text_encoder": Qwen3ForCausalLM(config),
        "tokenizer": tokenizer,
        "transformer": transformer,
    }
