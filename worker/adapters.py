"""Adapters on a loaded pipeline: configured LoRAs and textual inversions, and taught words per request."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from worker.errors import BadRequest
from worker.plan import Plan
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

# Taught words' files kept on disk between requests (each request carries its files anyway).
MAX_CACHED_CONCEPTS = 64


def activate_loras(pipe: Any, names: list[str], scales: list[float]) -> None:
    """What `pipe.set_adapters(names, scales)` does with plain-number scales, component by component.

    Diffusers' own first expands per-block scales for UNets, reading `layers_per_block` as one number
    even when every scale is a plain number that needs no expansion; a UNet with a count per level
    (the world preset's grown top level, a legal diffusers config) fails there with a TypeError.
    """
    from diffusers.utils.peft_utils import set_weights_and_activate_adapters

    for component in pipe.get_list_adapters():  # the components holding any LoRA: unet, text encoders, transformer
        set_weights_and_activate_adapters(getattr(pipe, component), names, scales)


class Adapters:
    """Which adapters each preset's pipeline holds; loads them on first use and switches them per batch."""

    def __init__(self, settings: WorkerSettings, cache_dir: Path) -> None:
        self._settings = settings
        self._cache_dir = cache_dir
        self._loaded: set[tuple[str, str]] = set()

    def forget(self, model: str) -> None:
        """The preset was unloaded: its adapters load again with it."""
        self._loaded = {(m, a) for m, a in self._loaded if m != model}

    def use(self, pipe: Any, plan: Plan) -> None:
        """Load the plan's adapters on first use (cached), and switch LoRAs on or off for this batch."""
        loras = []
        for choice in plan.adapters:
            spec = self._settings.adapters[choice.name]
            if (plan.model, choice.name) not in self._loaded:
                log.info("loading %s %s for %s", spec.kind, choice.name, plan.model)
                if spec.kind == "lora":
                    pipe.load_lora_weights(spec.source, weight_name=spec.weight_name, adapter_name=choice.name)
                else:
                    plan.family.load_textual_inversion(pipe, spec.source, spec.token or "")
                self._loaded.add((plan.model, choice.name))
            if spec.kind == "lora":
                loras.append(choice)
        any_lora = any(m == plan.model and self._settings.adapters[n].kind == "lora" for m, n in self._loaded)
        if loras:
            pipe.enable_lora()
            activate_loras(pipe, [c.name for c in loras], [c.scale for c in loras])
        elif any_lora:
            pipe.disable_lora()

    @contextlib.contextmanager
    def taught_words(self, pipe: Any, plan: Plan) -> Iterator[None]:
        """The plan's taught words loaded into the pipeline while its batch renders, and out again after."""
        loaded: list[str] = []
        try:
            for concept in plan.concepts:
                path = self._concept_file(base64.b64decode(concept.embedding))
                try:
                    plan.family.load_textual_inversion(pipe, str(path), concept.token)
                except Exception as exc:  # a file for another model, or not one at all (any loader's error)
                    with contextlib.suppress(Exception):  # SDXL: the first encoder may have taken it
                        plan.family.unload_textual_inversion(pipe, concept.token)
                    path.unlink(missing_ok=True)  # a file that does not load is not kept
                    log.info("the file of %s does not load into %s: %s", concept.token, plan.model, type(exc).__name__)
                    # The message names the word and the model only: never the worker's paths or the loader's text.
                    raise BadRequest(f"the file of {concept.token} does not fit model {plan.model!r}",
                                     param="concepts") from exc  # fmt: skip
                loaded.append(concept.token)
            yield
        finally:
            for token in loaded:
                plan.family.unload_textual_inversion(pipe, token)

    def _concept_file(self, data: bytes) -> Path:
        """A taught word's file on disk, by content hash (the family's loader reads files); the cache is bounded."""
        folder = self._cache_dir / "concepts"
        path = folder / f"{hashlib.sha256(data).hexdigest()}.safetensors"
        if path.exists():
            path.touch()  # recently used: the last to go
            return path
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)
        kept = sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[MAX_CACHED_CONCEPTS:]:
            old.unlink(missing_ok=True)
        return path
