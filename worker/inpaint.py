"""What an inpaint repaints, and what it keeps exactly.

Latent pipelines see the mask at latent resolution: diffusers shrinks it by the VAE's scale with
nearest sampling, so a latent cell half inside the mask may be kept, and its old colours then bleed
into the new paint around the mask's edge (a new background keeps a rim of the old one around every
object). The pipeline is therefore given whole latent cells: every cell the mask touches, and two rings
around them, which the UNet's and the decoder's 3x3 convolutions mix into it. The result is composited
with the mask as asked, so every pixel outside it stays exactly as it was.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

# Rings of latent cells repainted around those the mask touches. On the shape world's 175 chat edits
# (25 of each kind): no rings 60.6% right, one 62.3%, two 63.4% (new backgrounds 44 -> 52 -> 64%).
RINGS = 2


def paint_mask(mask: Image.Image, latent_scale: int) -> Image.Image:
    """The area the pipeline repaints: the latent cells (`latent_scale` pixels square) `mask` touches, RINGS more.

    Worked out on the latent grid, so it costs one pass over the pixels at any size (a pixel-level
    maximum filter as wide took seconds on a 2048-pixel picture).
    """
    scale = max(1, latent_scale)
    pixels = np.asarray(mask.convert("L"))
    height, width = pixels.shape
    rows, cols = -(-height // scale), -(-width // scale)
    padded = np.zeros((rows * scale, cols * scale), dtype=np.uint8)
    padded[:height, :width] = pixels
    touched = Image.fromarray(padded.reshape(rows, scale, cols, scale).max(axis=(1, 3)), mode="L")
    cells = np.asarray(touched.filter(ImageFilter.MaxFilter(2 * RINGS + 1)))  # on the small grid: cheap
    painted = cells.repeat(scale, axis=0).repeat(scale, axis=1)[:height, :width]
    return Image.fromarray(np.ascontiguousarray(painted), mode="L")


def keep_outside(painted: list[Image.Image], original: Image.Image, mask: Image.Image) -> list[Image.Image]:
    """Each painted picture inside `mask` and the original outside it (the VAE round trip shifts every pixel)."""
    return [Image.composite(out, original, mask) for out in painted]
