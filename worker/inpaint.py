"""What an inpaint repaints, and what it keeps exactly.

Latent pipelines see the mask at latent resolution: diffusers shrinks it by the VAE's scale with
nearest sampling, so a latent cell half inside the mask may be kept, and its old colours then bleed
into the new paint around the mask's edge (a new background keeps a rim of the old one around every
object). The pipeline is therefore given the mask grown by two latent cells (the cell the edge lies
in, and the next, which the decoder's 3x3 convolutions mix into it), and the result is composited
with the mask as asked, so that every pixel outside it stays exactly as it was.
"""

from __future__ import annotations

from PIL import Image, ImageFilter

CELLS = 2  # latent cells the painted area reaches past the mask


def paint_mask(mask: Image.Image, latent_scale: int) -> Image.Image:
    """The area the pipeline repaints: `mask` grown by CELLS latent cells of `latent_scale` pixels each."""
    reach = CELLS * max(1, latent_scale)
    return mask.convert("L").filter(ImageFilter.MaxFilter(2 * reach + 1))


def keep_outside(painted: list[Image.Image], original: Image.Image, mask: Image.Image) -> list[Image.Image]:
    """Each painted picture inside `mask` and the original outside it (the VAE round trip shifts every pixel)."""
    return [Image.composite(out, original, mask) for out in painted]
