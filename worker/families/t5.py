"""Transformer families whose long-prompt reader is T5 (FLUX.1, SD3.5): a hard token limit, checked.

diffusers cuts a T5 prompt at `max_sequence_length` with only a log line. Here
the prompt is counted first: up to the limit every token reaches T5 (the
sequence length is always the limit, so a seed draws the same image whatever
else shares its batch); past it the request is refused with a 400 that names
the limit. Their CLIP encoders give the pooled vector (and SD3's first 77
tokens), by design, so T5 is the encoder that reads the whole prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.base import Family, ModeInputs
from worker.protocol import Mode

if TYPE_CHECKING:
    from worker.settings import ModelPreset


class T5Family(Family):
    """A transformer family reading prompts with T5 up to `token_limit` tokens."""

    denoiser = "transformer"
    size_multiple = 16  # an 8x VAE and 2x2 patches
    # The pipeline attribute holding the T5 tokenizer.
    t5_tokenizer: ClassVar[str] = "tokenizer_2"
    # The most tokens the pipeline lets T5 read (diffusers refuses more than 512).
    token_limit: ClassVar[int] = 512

    def limit(self, preset: ModelPreset) -> int:
        """The preset's token limit: its own `prompt_tokens` when lower than the family's."""
        return min(preset.prompt_tokens or self.token_limit, self.token_limit)

    def prompt_group(self, pipe: Any, texts: list[str], preset: ModelPreset) -> int:
        """Every text must fit the limit (end token included); all such prompts batch together."""
        tokenizer = getattr(pipe, self.t5_tokenizer)
        counts = [len(tokenizer(text, truncation=False).input_ids) for text in texts]
        self.refuse_long_prompts(counts, self.limit(preset), "T5")
        return 0

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """The prompts as text, with T5 reading up to the limit."""
        kwargs = super().prompt_kwargs(pipe, prompts, negatives, group, preset)
        return {**kwargs, "max_sequence_length": self.limit(preset)}

    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """As the base family, but the size is always given (these pipelines default to 1024², not the image)."""
        size = inputs.size
        return {**super().mode_kwargs(mode, inputs), "width": size.width, "height": size.height}
