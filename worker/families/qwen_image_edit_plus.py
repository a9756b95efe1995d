"""Qwen-Image-Edit Plus (2509, 2511): Qwen-Image-Edit reading 1 to 3 pictures at once, in order.

"Put the cat from picture 2 into picture 1": the pipeline tells its Qwen2.5-VL
encoder "Picture 1: <image> Picture 2: <image> ..." before the instruction, so
prompts name the pictures by number, in the request's order (the edited one
first). Each picture is resized inside the pipeline (about 384² for the vision
encoder, about 1024² for the VAE, as the model was trained); the output is the
plan's size. A new picture may be drawn from references alone.

The pipeline renders one prompt per call: a request's images share its prompt,
so they go as `num_images_per_prompt` with one generator each, which keeps a
seed's picture the same whether it was drawn alone or beside others.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from worker.families.base import ModeInputs
from worker.families.qwen_image import tiny_qwen_components
from worker.families.qwen_image_edit import QwenImageEdit
from worker.protocol import Mode

if TYPE_CHECKING:
    from worker.settings import ModelPreset


class QwenImageEditPlus(QwenImageEdit):
    """Qwen-Image-Edit-2509 / -2511: instruction edits of up to 3 pictures."""

    name = "qwen-image-edit-plus"
    pipelines: ClassVar[Mapping[Mode, str]] = {"instruct": "QwenImageEditPlusPipeline"}
    max_images = 3

    def prompt_kwargs(
        self, pipe: Any, prompts: list[str], negatives: list[str | None], group: int, preset: ModelPreset
    ) -> dict[str, Any]:
        """One prompt for the request's images (the pipeline takes one per call), each with its own generator."""
        kwargs = super().prompt_kwargs(pipe, prompts, negatives, group, preset)
        if len(set(prompts)) > 1:  # an edit's plan is its own batch, so its images share one prompt
            raise ValueError(f"{self.name} renders one prompt per call; got {len(set(prompts))}")
        return {
            **kwargs,
            "prompt": prompts[0],
            "negative_prompt": kwargs["negative_prompt"][0],
            "num_images_per_prompt": len(prompts),
        }

    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """Every picture in order (the list is the pictures, not the batch), and the plan's size for the output."""
        return {"image": inputs.pictures, "width": inputs.size.width, "height": inputs.size.height}

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random Qwen-Image-Edit Plus pipeline, saved without its processor (it needs torchvision to save).

        Load it with `processor=tiny_qwen_processor()` passed to from_pretrained.
        """
        from diffusers import QwenImageEditPlusPipeline

        pipe: Any = QwenImageEditPlusPipeline(**tiny_qwen_components(), processor=None)
        pipe.save_pretrained(directory)
        return directory
