"""Model families behind one seam: each family is one module, listed once in the registry.

Importing this package is cheap and torch-free; a family module imports
diffusers only when it builds or loads a pipeline.
"""

from __future__ import annotations

import importlib

from worker.families.base import Family
from worker.families.registry import FAMILIES

__all__ = ["FAMILIES", "Family", "family_for"]


def family_for(name: str) -> Family:
    """The family a preset names (presets are validated against FAMILIES, so it exists)."""
    module, _, cls = FAMILIES[name].partition(":")
    family: Family = getattr(importlib.import_module(module), cls)()
    return family
