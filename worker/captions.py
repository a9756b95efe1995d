"""Pictures to words for /describe: an image-captioning model (BLIP) writes an English prompt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from worker.pipelines import Placement, built_once
from worker.tiny import save_tiny_blip

# BLIP-large's well-known tics: a made-up word for "a blurry thing" and a "there is" opener.
_TICS = re.compile(r"\b(?:arafed|araffe|arafe|araffed)\b|^(?:there (?:is|are)|this is)\s+", re.IGNORECASE)


def tidy(caption: str) -> str:
    """A caption as a prompt: the model's tics removed, whitespace collapsed."""
    text = _TICS.sub("", caption.strip())
    return re.sub(r"\s+", " ", text).strip(" ,.")


class Captioner:
    """Loads a BLIP captioner once and describes images."""

    def __init__(self, source: str, placement: Placement, cache_dir: Path) -> None:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        if source == "tiny":
            source = str(built_once(cache_dir / "tiny-blip", save_tiny_blip, "config.json"))
        self._processor: Any = BlipProcessor.from_pretrained(source)
        model: Any = BlipForConditionalGeneration.from_pretrained(source, dtype=placement.dtype)
        self._model = model.to(placement.device).eval()
        self._device = placement.device

    def describe(self, image: Image.Image, *, max_new_tokens: int = 60) -> str:
        """One English description of the image, tidied into a prompt."""
        inputs = self._processor(images=image, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self._device, dtype=self._model.dtype)
        with torch.inference_mode():
            # Beam search gives BLIP's fuller captions; the penalty stops "a cat a cat a cat".
            out = self._model.generate(
                pixel_values=pixels, max_new_tokens=max_new_tokens, num_beams=3, repetition_penalty=1.3
            )
        return tidy(self._processor.decode(out[0], skip_special_tokens=True))
