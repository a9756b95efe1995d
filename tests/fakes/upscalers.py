"""Upscaler weights files built in code (ESRGAN, random weights), and spandrel imported where torchvision is not.

`esrgan_file` saves spandrel's own RRDBNet with random weights as a safetensors file (or a pickle), the
way a downloaded model arrives, so the worker loads it through spandrel's loader as a user's file.

spandrel 0.4.2 imports every architecture it knows when it is imported, and two of them (LaMa, an
inpainter, and RestoreFormer, a face restorer) import torchvision at that moment. The only torchvision
this machine's registries hold for torch 2.13 is a CUDA build, which cannot load beside CPU torch and
breaks transformers' import too, so it is not installed. `import_spandrel` answers those two imports
with a stand-in whose functions raise, imports spandrel, and removes the stand-in again, so nothing
else in the process (transformers checks for torchvision) ever sees it. The upscalers themselves
(ESRGAN and the rest) never touch torchvision: what the tests load and run is spandrel's real code.
Where a real torchvision is installed, spandrel is imported as it is.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any, NoReturn

_STAND_IN = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


def _absent(*_args: object, **_kwargs: object) -> NoReturn:
    raise RuntimeError("torchvision is not installed here; only the LaMa and RestoreFormer models need it")


def import_spandrel() -> Any:
    """The spandrel package, imported (through the stand-in only where torchvision cannot be imported)."""
    try:
        return importlib.import_module("spandrel")
    except ModuleNotFoundError as exc:
        if exc.name != "torchvision":
            raise
    package, transforms, functional = (types.ModuleType(name) for name in _STAND_IN)
    functional.InterpolationMode = type("InterpolationMode", (), {})  # type: ignore[attr-defined]
    functional.rotate = _absent  # type: ignore[attr-defined]
    functional.normalize = _absent  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    package.transforms = transforms  # type: ignore[attr-defined]
    sys.modules.update(dict(zip(_STAND_IN, (package, transforms, functional), strict=True)))
    try:
        return importlib.import_module("spandrel")
    finally:
        for name in _STAND_IN:
            sys.modules.pop(name, None)


def esrgan_file(path: Path, *, scale: int = 4, filters: int = 8, blocks: int = 1, seed: int = 0) -> Path:
    """An ESRGAN (RRDBNet) with random weights saved at `path`: .safetensors, or a pickled state dict (.pth).

    filters=64, blocks=23 is the architecture of Real-ESRGAN x4plus and 4x-UltraSharp; the default is tiny.
    """
    import torch
    from safetensors.torch import save_file

    import_spandrel()
    architectures = importlib.import_module("spandrel.architectures.ESRGAN")
    torch.manual_seed(seed)
    network = architectures.ESRGAN(in_nc=3, out_nc=3, num_filters=filters, num_blocks=blocks, scale=scale)
    state = {name: tensor.contiguous() for name, tensor in network.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
