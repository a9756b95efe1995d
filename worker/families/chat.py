"""Families whose prompt encoder is an LLM reading a chat template: FLUX.2 (Qwen3 for [klein], Mistral for [dev])
and Z-Image (Qwen3).

diffusers renders the prompt in the model's chat template and cuts the tokens at
`max_sequence_length` with no word said. Here the templated prompt is counted
first: up to the limit every token reaches the encoder (the sequence is always
padded to the limit, so a seed draws the same image whatever shares its batch);
past it the request gets a 400 naming the limit, counted in the user's own
tokens (the template's are not the user's to shorten).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.base import Family

if TYPE_CHECKING:
    from worker.settings import ModelPreset

# Qwen3's chat template, reduced to what diffusers renders: user turns, then the assistant's turn, opened
# with an empty thinking block when thinking is off (FLUX.2 [klein]) and bare when it is on (Z-Image).
# The tiny tokenizers carry it.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


class ChatPromptFamily(Family):
    """A family whose prompts are read whole, in a chat template, up to `token_limit` tokens."""

    # diffusers' max_sequence_length for the family: the most tokens of templated prompt it gives the encoder.
    token_limit: ClassVar[int] = 512
    encoder_label: ClassVar[str] = "Qwen3"
    # Keyword arguments diffusers renders the template with (Qwen3's `enable_thinking`).
    template_options: ClassVar[Mapping[str, Any]] = {}

    def limit(self, preset: ModelPreset) -> int:
        """The preset's token limit (template included): its own `prompt_tokens` when lower than the family's."""
        return min(preset.prompt_tokens or self.token_limit, self.token_limit)

    def templated(self, pipe: Any, text: str) -> int:
        """How many tokens the encoder reads for `text`: the prompt in its chat template, as diffusers renders it."""
        messages = [{"role": "user", "content": text}]
        chat = pipe.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **self.template_options
        )
        return len(pipe.tokenizer(chat).input_ids)

    def prompt_group(self, pipe: Any, texts: list[str], preset: ModelPreset) -> int:
        """Every text must fit the encoder whole, template and all; the 400 counts the user's own tokens."""
        frame = self.templated(pipe, "")
        counts = [self.templated(pipe, text) - frame for text in texts]
        self.refuse_long_prompts(counts, self.limit(preset) - frame, self.encoder_label)
        return 0

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """The prompts as text (with negatives where the family reads them), read up to the limit."""
        return {
            **super().prompt_kwargs(pipe, prompts, negatives, group, preset),
            "max_sequence_length": self.limit(preset),
        }


def tiny_qwen3_tokenizer() -> Any:
    """The tiny byte-level Qwen tokenizer with Qwen3's thinking tokens and chat template (tests' Qwen3 encoders)."""
    from worker.families.qwen_image import tiny_qwen_tokenizer

    tokenizer = tiny_qwen_tokenizer()
    tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer
