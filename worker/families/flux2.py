"""FLUX.2 [dev]: the 32B FLUX.2 model, reading prompts with Mistral Small 3.1 (non-commercial licence).

It draws and edits as FLUX.2 [klein] does (one pipeline; every picture of a
request is a reference, in order, their latents beside the noise), from up to
10 pictures (Black Forest Labs recommends at most 6 for [dev]). It has no
inpaint pipeline: a masked edit is an instruction edit of the whole picture,
as for the other edit models without one. Its guidance is distilled into the
model (about 4), and it reads no negative prompt.

Its encoder's chat template holds a system message before the prompt; diffusers
cuts the tokens at 512 with no word said, so the prompt is counted in that
template (`ChatPromptFamily`) and refused past the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from worker.families.flux2_klein import Flux2Klein, tiny_flux2_parts
from worker.protocol import Mode

# A Mistral-style template over content parts, as diffusers' format_input writes them (tests' tiny tokenizer).
TINY_MISTRAL_TEMPLATE = (
    "{{ '<s>' }}{%- for message in messages %}"
    "{%- set text = message.content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') %}"
    "{%- if message.role == 'system' %}{{ '[SYSTEM_PROMPT]' + text + '[/SYSTEM_PROMPT]' }}"
    "{%- else %}{{ '[INST]' + text + '[/INST]' }}{%- endif %}{%- endfor %}"
)


class Flux2(Flux2Klein):
    """FLUX.2 [dev]: text to image and reference edits from up to 10 pictures."""

    name = "flux2"
    pipelines: ClassVar[Mapping[Mode, str]] = {"generate": "Flux2Pipeline", "instruct": "Flux2Pipeline"}
    encoder_label = "Mistral"
    template_options: ClassVar[Mapping[str, Any]] = {}
    max_images = 10

    def templated(self, pipe: Any, text: str) -> int:
        """The prompt's tokens in Mistral's template with FLUX.2's system message, as diffusers tokenizes them."""
        messages = [
            {"role": "system", "content": [{"type": "text", "text": pipe.system_message}]},
            # diffusers drops "[IMG]" from prompts before templating them.
            {"role": "user", "content": [{"type": "text", "text": text.replace("[IMG]", "")}]},
        ]
        rendered = pipe.tokenizer.apply_chat_template(
            messages, add_generation_prompt=False, tokenize=True, return_dict=True
        )
        ids = rendered["input_ids"]
        return len(ids[0] if ids and isinstance(ids[0], list) else ids)

    def text_tokens(self, pipe: Any, prompt: str) -> int:
        """The prompt's own tokens, for `usage`: the real model's "tokenizer" is a Pixtral processor, whose first
        argument is images, so its inner tokenizer counts."""
        tokenizer = getattr(pipe.tokenizer, "tokenizer", pipe.tokenizer)
        return len(tokenizer(prompt, add_special_tokens=False).input_ids)

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random FLUX.2 [dev] pipeline (Mistral3 encoder, byte-level tokenizer), saved with save_pretrained."""
        from diffusers import Flux2Pipeline

        pipe: Any = Flux2Pipeline(**tiny_flux2_components())
        pipe.save_pretrained(directory)
        return directory


def tiny_flux2_components(seed: int = 0) -> dict[str, Any]:
    """The parts of a tiny FLUX.2 [dev]: a 30-layer narrow Mistral3 (diffusers stacks its layers 10, 20 and 30)
    behind a byte-level tokenizer with Mistral's chat tokens, and the FLUX.2 transformer with embedded guidance."""
    import torch
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    from worker.families.qwen_image import tiny_qwen_tokenizer

    torch.manual_seed(seed)
    tokenizer = tiny_qwen_tokenizer()
    tokenizer.add_tokens(["<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]"],
                         special_tokens=True)  # fmt: skip
    tokenizer.chat_template = TINY_MISTRAL_TEMPLATE
    tokenizer.pad_token = "<|endoftext|>"
    ids = tokenizer.convert_tokens_to_ids
    special = {"bos_token_id": ids("<s>"), "eos_token_id": ids("</s>"), "pad_token_id": ids("<|endoftext|>")}
    config = Mistral3Config(
        text_config={
            "model_type": "mistral", "vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 16,
            "num_hidden_layers": 30, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8,
            "max_position_embeddings": 1024, "rope_theta": 1e9, "sliding_window": None, **special,
        },
        vision_config={"model_type": "pixtral", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "intermediate_size": 16, "image_size": 32, "patch_size": 8, "num_channels": 3},
        image_token_index=ids("[IMG]"), **special,
    )  # fmt: skip
    return {
        **tiny_flux2_parts(guidance_embeds=True),
        "text_encoder": Mistral3ForConditionalGeneration(config),
        "tokenizer": tokenizer,
    }
