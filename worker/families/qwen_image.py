"""Qwen-Image: a 20B MMDiT reading prompts with the Qwen2.5-VL language model (Chinese and English natively).

Its encoder is an LLM: the prompt is wrapped in a chat template whose system
part is dropped from the embeddings, and diffusers cuts the rest at 1024
tokens with no word said. Here the prompt is counted first: up to the limit
every token reaches the encoder; past it the request gets a 400 naming the
limit. Like FLUX.1 its latents are packed in 2x2 patches (16 channels), its
guidance is real CFG (`true_cfg_scale`, which needs a negative prompt), and
its VAE is the Wan video VAE, one frame long.
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

# diffusers' own bound on `max_sequence_length` for every Qwen-Image pipeline.
QWEN_TOKEN_LIMIT = 1024

# Qwen2.5-VL's chat and vision special tokens, which the pipelines' templates and processor use.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip


class QwenImage(Family):
    """Qwen-Image: text to image (text rendering included), img2img and inpaint."""

    name = "qwen-image"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "generate": "QwenImagePipeline",
        "img2img": "QwenImageImg2ImgPipeline",
        "inpaint": "QwenImageInpaintPipeline",
    }
    denoiser = "transformer"
    guidance_argument = "true_cfg_scale"
    packed_latents = True
    size_multiple = 16  # an 8x VAE and 2x2 patches
    # Wan 2.1 VAE's latent -> RGB factors (its 16 channels), as ComfyUI previews Qwen-Image.
    latent_rgb = (
        (
            (-0.1299, -0.1692, 0.2932), (0.0671, 0.0406, 0.0442), (0.3568, 0.2548, 0.1747),
            (0.0372, 0.2344, 0.1420), (0.0313, 0.0189, -0.0328), (0.0296, -0.0956, -0.0665),
            (-0.3477, -0.4059, -0.2925), (0.0166, 0.1902, 0.1975), (-0.0412, 0.0267, -0.1364),
            (-0.1293, 0.0740, 0.1636), (0.0680, 0.3019, 0.1128), (0.0032, 0.0581, 0.0639),
            (-0.1251, 0.0927, 0.1699), (0.0060, -0.0633, 0.0005), (0.3477, 0.2275, 0.2950),
            (0.1984, 0.0913, 0.1861),
        ),
        (-0.1835, -0.0868, -0.3360),
    )  # fmt: skip

    # -- prompts -------------------------------------------------------------
    def limit(self, preset: ModelPreset) -> int:
        """The preset's token limit: its own `prompt_tokens` when lower than the family's."""
        return min(getattr(preset, "prompt_tokens", None) or QWEN_TOKEN_LIMIT, QWEN_TOKEN_LIMIT)

    def room(self, pipe: Any, preset: ModelPreset) -> int:
        """How many tokens of the user's own text the encoder reads.

        diffusers tokenizes the templated text up to `limit + drop` tokens and drops the first `drop` (the
        system part); what is left for the prompt is that budget less the template's own tokens around it.
        """
        template, drop = pipe.prompt_template_encode, pipe.prompt_template_encode_start_idx
        frame = len(pipe.tokenizer(template.format("")).input_ids)
        return self.limit(preset) + drop - frame

    def count(self, pipe: Any, text: str) -> int:
        """The prompt's own tokens, as they sit in the template."""
        template = pipe.prompt_template_encode
        return len(pipe.tokenizer(template.format(text)).input_ids) - len(pipe.tokenizer(template.format("")).input_ids)

    def prompt_group(self, pipe: Any, texts: list[str], preset: ModelPreset) -> int:
        """Every text must fit the encoder whole; all such prompts batch together."""
        self.refuse_long_prompts([self.count(pipe, t) for t in texts], self.room(pipe, preset), "Qwen2.5-VL")
        return 0

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """The prompts as text, read up to the limit; guidance is real CFG, on only with a negative prompt."""
        kwargs = super().prompt_kwargs(pipe, prompts, negatives, group, preset)
        if kwargs.get("negative_prompt") is None:
            # true_cfg_scale needs a negative prompt; an empty one gives the model's plain CFG.
            kwargs["negative_prompt"] = [""] * len(prompts)
        return {**kwargs, "max_sequence_length": self.limit(preset)}

    # -- per-mode arguments --------------------------------------------------
    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """As the base family, but the size is always given (these pipelines default to 1024², not the image)."""
        size = inputs.size
        return {**super().mode_kwargs(mode, inputs), "width": size.width, "height": size.height}

    # -- previews ------------------------------------------------------------

    # -- adapters ------------------------------------------------------------
    def load_textual_inversion(self, pipe: Any, source: str, token: str) -> None:
        """Qwen-Image has no textual inversion (an LLM encoder)."""
        raise BadRequest(f"{self.name} models cannot use textual inversion", param="adapters")

    # -- tests ---------------------------------------------------------------
    def build_tiny(self, directory: Path) -> Path:
        """A tiny random Qwen-Image pipeline, saved with save_pretrained."""
        from diffusers import QwenImagePipeline

        pipe: Any = QwenImagePipeline(**tiny_qwen_components())
        pipe.save_pretrained(directory)
        return directory


def tiny_qwen_tokenizer() -> Any:
    """A byte-level Qwen2 tokenizer built in code: one token per UTF-8 byte, so it reads any language."""
    from transformers import Qwen2Tokenizer

    from worker.tiny import _bytes_to_unicode

    chars = list(_bytes_to_unicode().values())
    tokenizer = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(chars)}, merges=[])
    tokenizer.add_tokens(list(QWEN_SPECIAL_TOKENS), special_tokens=True)
    return tokenizer


def tiny_qwen_components(seed: int = 0) -> dict[str, Any]:
    """The parts of a tiny Qwen-Image pipeline (after diffusers' own test components), with our tokenizer."""
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    tokenizer = tiny_qwen_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(4, 4, 8),
    )  # fmt: skip
    vae = AutoencoderKLQwenImage(
        base_dim=16, z_dim=16, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 16, latents_std=[1.0] * 16,
    )  # fmt: skip
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
            "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "text_encoder": Qwen2_5_VLForConditionalGeneration(config),
        "tokenizer": tokenizer,
        "transformer": transformer,
    }
