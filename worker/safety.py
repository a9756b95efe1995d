"""The CLIP safety checker, run on outputs for requests from places where NSFW is not allowed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from worker.pipelines import Placement, built_once
from worker.tiny import save_tiny_safety_checker

log = logging.getLogger(__name__)

DEFAULT_CHECKER = "CompVis/stable-diffusion-safety-checker"


class SafetyChecker:
    """Loads a checker once and says which images it flags."""

    def __init__(self, source: str, placement: Placement, cache_dir: Path) -> None:
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPImageProcessor

        if source == "tiny":  # offline: a random checker built in code, which flags nothing
            source = str(built_once(cache_dir / "tiny-safety", save_tiny_safety_checker, "config.json"))
        self._processor: Any = CLIPImageProcessor.from_pretrained(source)
        model: Any = StableDiffusionSafetyChecker.from_pretrained(source)
        self._model = model.to(placement.device).eval()
        self._device = placement.device

    def flagged(self, images: list[Image.Image]) -> list[bool]:
        """One verdict per image: True when the checker sees unsafe content."""
        inputs = self._processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self._device, dtype=self._model.dtype)
        arrays = np.stack([np.asarray(i, dtype=np.float32) / 255.0 for i in images])
        with torch.inference_mode():
            _, verdicts = self._model(clip_input=pixels, images=arrays)
        return [bool(v) for v in verdicts]
