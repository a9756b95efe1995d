"""The painted area and the kept pixels of an inpaint (worker/inpaint.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from worker.inpaint import keep_outside, paint_mask


def test_the_painted_area_reaches_two_latent_cells_past_the_mask() -> None:
    mask = Image.new("L", (32, 32), 0)
    mask.putpixel((10, 12), 255)
    assert paint_mask(mask, 2).getbbox() == (6, 8, 15, 17)  # 4 pixels each way: two cells of 2
    assert paint_mask(mask, 8).getbbox() == (0, 0, 27, 29)
    assert paint_mask(Image.new("1", (8, 8), 0), 8).mode == "L"  # any mask mode in, an "L" mask out


def test_every_pixel_outside_the_mask_is_the_original() -> None:
    original = Image.new("RGB", (8, 8), (10, 20, 30))
    painted = [Image.new("RGB", (8, 8), (200, 100, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    mask = Image.new("L", (8, 8), 0)
    mask.paste(255, (2, 2, 5, 5))
    kept = [np.asarray(image) for image in keep_outside(painted, original, mask)]
    inside = np.asarray(mask) == 255
    for image, source in zip(kept, painted, strict=True):
        assert (image[~inside] == (10, 20, 30)).all()
        assert (image[inside] == np.asarray(source)[inside]).all()
