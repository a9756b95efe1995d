"""Best-of-N scoring: how well each candidate matches the final prompt, with a CLIP-architecture model.

The score is the model's own image-text logit, `logit_scale.exp() * cos(image, text)`: for OpenAI's
CLIP (logit scale 100) that is the usual CLIP score, and for PickScore (a CLIP fine-tuned on human
preferences, loaded by the same CLIPModel) it is PickScore. Higher is better. CLIP reads 77 tokens,
so a longer prompt is scored on its first 77.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from worker.errors import ModelUnavailable
from worker.pipelines import Placement, built_once
from worker.tiny import save_tiny_clip

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def scorer_folder(source: str, cache_dir: Path) -> str:
    """Where a scorer loads from: "tiny" is built once in the cache; anything else as given."""
    if source == "tiny":
        return str(built_once(cache_dir / "tiny-clip-scorer", save_tiny_clip, "config.json"))
    return source


def check_scorer(source: str) -> None:
    """Refuse at start-up, cheaply (no weights read), a scorer that cannot load: not a hub id, or a folder
    that holds no CLIP model."""
    if source == "tiny":
        return
    folder = Path(source).expanduser()
    if folder.is_dir():
        try:
            kind = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"scorer {source!r}: no readable config.json in that folder") from exc
        if kind != "clip":
            raise ModelUnavailable(f"scorer {source!r} holds a {kind!r} model; best-of needs a CLIP model")
    elif not _HUB_ID.match(source):
        raise ModelUnavailable(f"scorer {source!r} is neither a folder nor a hub id like openai/clip-vit-large-patch14")


class Scorer:
    """Loads a CLIP model once and scores images against a prompt."""

    def __init__(self, source: str, processor: str | None, placement: Placement, cache_dir: Path) -> None:
        from transformers import CLIPModel, CLIPProcessor

        folder = scorer_folder(source, cache_dir)
        self._processor: Any = CLIPProcessor.from_pretrained(
            scorer_folder(processor, cache_dir) if processor else folder
        )
        model: Any = CLIPModel.from_pretrained(folder)
        self._model = model.to(placement.device).eval()
        self._device = placement.device

    def scores(self, images: list[Image.Image], prompt: str) -> list[float]:
        """One score per image, in order."""
        inputs = self._processor(text=[prompt], images=images, return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            logits = self._model(**{k: v.to(self._device) for k, v in inputs.items()}).logits_per_image
        return [float(v) for v in logits[:, 0].float().cpu()]
