"""Qwen-Image-Edit: the Qwen-Image instruction-edit model ("make it night", text edits in Chinese or English).

Its encoder sees the instruction together with the image (Qwen2.5-VL), so it
needs transformers' Qwen2VLProcessor, which needs torchvision: without it the
worker refuses to start, naming the preset and the package. The pipeline
resizes its input to about 1024² for the VAE and the vision encoder whatever
the output size is (the model's design); the output is the plan's size.
diffusers never cuts an edit's instruction, so the limit here is Qwen-Image's
1024 tokens of the user's own text, checked the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.base import ModeInputs
from worker.families.qwen_image import QwenImage, tiny_qwen_components
from worker.protocol import Mode

if TYPE_CHECKING:
    from worker.settings import ModelPreset


class QwenImageEdit(QwenImage):
    """Qwen-Image-Edit (and 2509/2511 checkpoints of the same class): instruction edits."""

    name = "qwen-image-edit"
    pipelines: ClassVar[Mapping[Mode, str]] = {"instruct": "QwenImageEditPipeline"}
    base = "instruct"
    requires = ("torchvision",)

    def room(self, pipe: Any, preset: ModelPreset) -> int:
        """The limit itself: the edit template is never truncated, and the image's tokens do not count."""
        return self.limit(preset)

    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """The parent image for every sample, and the plan's size for the output."""
        return {"image": [inputs.image] * inputs.count, "width": inputs.size.width, "height": inputs.size.height}

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random Qwen-Image-Edit pipeline, saved without its processor (it needs torchvision to save).

        Load it with `processor=tiny_qwen_processor()` passed to from_pretrained.
        """
        from diffusers import QwenImageEditPipeline

        pipe: Any = QwenImageEditPipeline(**tiny_qwen_components(), processor=None)
        pipe.save_pretrained(directory)
        return directory


def tiny_qwen_processor() -> Any:
    """A Qwen2VLProcessor for the tiny tokenizer, built without torchvision (images only, the PIL backend).

    transformers validates a processor's video part on construction, and that part needs torchvision;
    an edit reads images only, so the parts are set directly.
    """
    from transformers import Qwen2VLImageProcessorPil, Qwen2VLProcessor

    from worker.families.qwen_image import tiny_qwen_tokenizer

    tokenizer = tiny_qwen_tokenizer()
    processor = Qwen2VLProcessor.__new__(Qwen2VLProcessor)
    processor.image_processor = Qwen2VLImageProcessorPil()
    processor.tokenizer = tokenizer
    processor.video_processor = None
    processor.chat_template = None
    processor.image_token, processor.video_token = "<|image_pad|>", "<|video_pad|>"
    processor.image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    processor.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    return processor
