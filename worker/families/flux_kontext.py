"""FLUX.1 Kontext: the FLUX.1 instruction-edit model ("make it night" keeps the subject).

It edits an image from a whole new description; region edits by words use its
inpaint pipeline, with the parent image as the reference. Kontext resizes its
input to one of its ~1024² training sizes and its output to `max_area`
unless told otherwise: here the engine has already fitted the image to the
preset's pixel budget, so both are turned off and the size is the plan's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from worker.families.base import ModeInputs
from worker.families.flux import Flux, save_tiny_flux
from worker.protocol import Mode


class FluxKontext(Flux):
    """FLUX.1 Kontext [dev]: instruction edits, region edits (inpaint), and text to image."""

    name = "flux-kontext"
    pipelines: ClassVar[Mapping[Mode, str]] = {
        "instruct": "FluxKontextPipeline",
        "generate": "FluxKontextPipeline",
        "inpaint": "FluxKontextInpaintPipeline",
    }
    base = "instruct"

    def mode_kwargs(self, mode: Mode, inputs: ModeInputs) -> dict[str, Any]:
        """The plan's size exactly (no resizing to ~1024²); an inpaint sees the whole image as reference."""
        size = inputs.size
        kwargs: dict[str, Any] = {"width": size.width, "height": size.height, "max_area": size.width * size.height}
        if mode == "generate":
            return kwargs
        kwargs.update(image=[inputs.image] * inputs.count, _auto_resize=False)
        if mode == "inpaint":
            kwargs.update(
                mask_image=[inputs.mask] * inputs.count, image_reference=inputs.image, strength=inputs.strength
            )
        return kwargs

    def build_tiny(self, directory: Path) -> Path:
        """A tiny random FLUX.1 Kontext pipeline, saved with save_pretrained."""
        from diffusers import FluxKontextPipeline

        return save_tiny_flux(directory, FluxKontextPipeline)
