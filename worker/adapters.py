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
            pipe.set_adapters([c.name for c in loras], adapter_weights=[c.scale for c in loras])
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
                except (ValueError, KeyError, OSError) as exc:  # a file for another model, or not one at all
                    with contextlib.suppress(ValueError):  # SDXL: the first encoder may have taken it
                        plan.family.unload_textual_inversion(pipe, concept.token)
                    raise BadRequest(f"the file of {concept.token} does not fit model {plan.model!r}: {exc}",
                                     param="concepts") from exc  # fmt: skip
                loaded.append(concept.token)
            yield
        finally:
            for token in loaded:
                plan.family.unload_textual_inversion(pipe, token)

    def _concept_file(self, data: bytes) -> Path:
        """A taught word's file on disk, by content hash (the family's loader reads files)."""
        path = self._cache_dir / "concepts" / f"{hashlib.sha256(data).hexdigest()}.safetensors"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)
        return path
