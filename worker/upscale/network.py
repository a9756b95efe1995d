"""The super-resolution network: loaded by spandrel from a weights file, run in overlapping tiles.

spandrel reads the file's keys to find the architecture (ESRGAN/RRDBNet, Real-ESRGAN Compact, SwinIR,
HAT, DAT...) and its hyper-parameters, so any model of the field's usual kinds loads without egaku
knowing it. The network runs on tiles of `tile` input pixels a side, each with `overlap` pixels of
context from its neighbours that are cut off again after the network: a convolution near a tile's
edge then sees (almost) what it would see in the whole picture, so the tiles meet without seams and a
large picture fits in memory. Pieces go to the CPU as 8-bit pixels as soon as they are done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from worker.errors import JobCancelled, ModelUnavailable, OutOfMemory, WorkerError
from worker.pipelines import Placement
from worker.protocol import Size
from worker.settings import check_weights_file

log = logging.getLogger(__name__)

# Half precision only where the network says it holds up in it; float32 otherwise.
_HALF_SUPPORT = {torch.float16: "supports_half", torch.bfloat16: "supports_bfloat16"}


def check_upscaler(path: str) -> None:
    """Refuse at start-up, naming the setting, an upscaler file that is missing or a spandrel that cannot load."""
    if not Path(path).expanduser().is_file():
        raise ModelUnavailable(f"[worker] upscaler {path!r}: no such file")
    try:
        import spandrel  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailable(
            f"[worker] upscaler needs the Python package {exc.name or 'spandrel'}: install the upscale extra "
            "(pip install 'egaku[upscale]') and a torchvision built for your torch"
        ) from exc


def tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    scale: int,
    tile: int,
    overlap: int,
    stop: threading.Event | None = None,
) -> np.ndarray:
    """`run` (a x`scale` network) over a [1, 3, H, W] tensor in tiles; the result as an [H*s, W*s, 3] uint8 array."""
    _, _, height, width = image.shape
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            if stop is not None and stop.is_set():
                raise JobCancelled("the upscale was stopped")
            bottom, right = min(top + tile, height), min(left + tile, width)
            # The tile plus its context; only the tile's own part of the result is kept.
            y0, x0 = max(0, top - overlap), max(0, left - overlap)
            y1, x1 = min(height, bottom + overlap), min(width, right + overlap)
            piece = run(image[:, :, y0:y1, x0:x1])[0]
            own = piece[:, (top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale]
            pixels = (own.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            out[top * scale : bottom * scale, left * scale : right * scale] = pixels
    return out


class Upscaler:
    """One super-resolution network, loaded once; enlarges pictures to a given size."""

    def __init__(self, path: str, placement: Placement, *, allow_pickle: bool, tile: int, overlap: int) -> None:
        from spandrel import ImageModelDescriptor, ModelLoader, ModelTiling

        try:
            check_weights_file(path, allow_pickle)  # the settings checked it too: a pickle is never read unasked
        except ValueError as exc:
            raise WorkerError(str(exc)) from exc
        self.name = Path(path).name
        try:
            descriptor: Any = ModelLoader(device=placement.device).load_from_file(Path(path).expanduser())
        except Exception as exc:  # a missing file, a damaged one, or an architecture spandrel does not know
            log.error("could not load the upscaler %r", path, exc_info=exc)
            raise WorkerError(f"the upscaler {self.name!r} could not be loaded ([worker] upscaler)") from exc
        if not isinstance(descriptor, ImageModelDescriptor) or descriptor.scale < 2 or descriptor.input_channels != 3:
            raise WorkerError(
                f"{self.name!r} ({descriptor.architecture.name}, {descriptor.purpose}, scale {descriptor.scale}) "
                "is not an RGB upscaler ([worker] upscaler)"
            )
        dtype = placement.dtype if getattr(descriptor, _HALF_SUPPORT.get(placement.dtype, ""), False) else torch.float32
        self._model: Any = descriptor.to(dtype).eval()
        self._dtype = dtype
        self._device = placement.device
        self.scale: int = descriptor.scale
        # A network that needs the whole picture at once (it tiles inside) gets it whole.
        self._tile = tile if descriptor.tiling != ModelTiling.INTERNAL else 1 << 30
        self._overlap = overlap
        log.info("upscaler %s: %s x%d on %s (%s)", self.name, descriptor.architecture.name, self.scale,
                 placement.device, dtype)  # fmt: skip

    def passes(self, picture: tuple[int, int], size: Size) -> int:
        """How many runs of the network reach `size` from a picture of that size (a 2x network runs twice for 4x)."""
        needed = max(size.width / picture[0], size.height / picture[1])
        runs, reach = 1, self.scale
        while reach < needed:
            runs, reach = runs + 1, reach * self.scale
        return runs

    def upscale(self, picture: Image.Image, size: Size, stop: threading.Event | None = None) -> Image.Image:
        """The picture at `size`: the network as often as needed, then scaled down to the exact size."""
        current = picture.convert("RGB")
        try:
            for _ in range(self.passes(picture.size, size)):
                current = self._once(current, stop)
        except torch.OutOfMemoryError as exc:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise OutOfMemory("out of GPU memory while upscaling; a smaller [worker] upscale_tile needs less") from exc
        if current.size != (size.width, size.height):
            # A 4x network asked for 2x (or a capped result): its output scaled down, which keeps its detail.
            current = current.resize((size.width, size.height), Image.Resampling.LANCZOS)
        return current

    def _once(self, picture: Image.Image, stop: threading.Event | None) -> Image.Image:
        tensor = torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1)[None]
        tensor = tensor.to(self._device, dtype=self._dtype) / 255.0
        out = tiled(self._model, tensor, self.scale, self._tile, self._overlap, stop)
        return Image.fromarray(out, mode="RGB")
