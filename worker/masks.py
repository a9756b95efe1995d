"""Masks from words: CLIPSeg turns "the squirrel king" into a soft inpainting mask."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageFilter

from worker.errors import BadRequest
from worker.pipelines import Placement, built_once
from worker.tiny import save_tiny_clipseg

log = logging.getLogger(__name__)

DEFAULT_SEGMENTER = "CIDAS/clipseg-rd64-refined"


class TextMasker:
    """Loads a CLIPSeg model once and makes masks for (image, words)."""

    def __init__(self, source: str, placement: Placement, cache_dir: Path) -> None:
        from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

        if source == "tiny":
            source = str(built_once(cache_dir / "tiny-clipseg", save_tiny_clipseg, "config.json"))
        self._processor: Any = CLIPSegProcessor.from_pretrained(source)
        model: Any = CLIPSegForImageSegmentation.from_pretrained(source)
        self._model = model.to(placement.device).eval()
        self._device = placement.device

    def probabilities(self, image: Image.Image, words: str) -> torch.Tensor:
        """Per-pixel probability that the pixel shows `words`, at the image's size: [H, W]."""
        inputs = self._processor(text=[words], images=[image], return_tensors="pt", padding=True)
        with torch.inference_mode():
            logits = self._model(**{k: v.to(self._device) for k, v in inputs.items()}).logits
        probs = torch.sigmoid(logits.reshape(1, 1, *logits.shape[-2:]).float())
        size = (image.height, image.width)
        return torch.nn.functional.interpolate(probs, size=size, mode="bilinear", align_corners=False)[0, 0].cpu()

    def mask(
        self,
        image: Image.Image,
        words: str,
        *,
        threshold: float = 0.4,
        min_confidence: float = 0.2,
        dilate_px: int = 9,
        feather_px: float = 4.0,
    ) -> Image.Image:
        """A white-on-black "L" mask of where `words` are, grown and softened for inpainting."""
        probs = self.probabilities(image, words)
        peak = float(probs.max())
        if peak < min_confidence:
            raise BadRequest(f"couldn't find {words!r} in the image", param="mask_prompt")
        # Relative to the peak too, so a weak but clear match still gives a region.
        hard = (probs >= min(threshold, 0.8 * peak)).to(torch.uint8) * 255
        mask = Image.fromarray(hard.numpy(), mode="L")
        if dilate_px > 1:
            mask = mask.filter(ImageFilter.MaxFilter(dilate_px | 1))  # odd size required
        if feather_px > 0:
            mask = mask.filter(ImageFilter.GaussianBlur(feather_px))
        log.info("mask for %r covers %.0f%%", words, 100 * float((hard > 0).float().mean()))
        return mask
