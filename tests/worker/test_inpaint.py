"""The painted area and the kept pixels of an inpaint (worker/inpaint.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from worker.inpaint import keep_outside, paint_mask


def test_the_painted_area_is_whole_latent_cells_two_rings_past_the_mask() -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.putpixel((10, 12), 255)  # in the latent cell (x 5, y 6) of a VAE that halves the side
    assert paint_mask(mask, 2).getbbox() == (6, 8, 16, 18)  # cells x 3..7, y 4..8
    assert paint_mask(mask, 8).getbbox() == (0, 0, 32, 32)  # cell (1, 1) and two rings, cut at the edge
    soft = Image.new("L", (64, 64), 0)
    soft.putpixel((40, 40), 90)  # a feathered mask's faint edge still marks its cell, at full strength
    assert np.asarray(paint_mask(soft, 8)).max() == 90 and paint_mask(Image.new("1", (8, 8), 0), 8).mode == "L"


def test_an_odd_size_keeps_its_size() -> None:
    mask = Image.new("L", (50, 30), 0)
    mask.putpixel((49, 29), 255)
    assert paint_mask(mask, 8).size == (50, 30)
    assert paint_mask(mask, 8).getbbox() == (32, 8, 50, 30)  # cell (x 6, y 3): x 4..6, y 1..3, cut at the edge


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
