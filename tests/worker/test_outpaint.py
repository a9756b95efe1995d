"""Zoom out and pan: the geometry, then real inpaint pipelines (tiny SDXL, the world model) and HTTP."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from tests.conftest import tiny_worker_settings
from tests.worker.test_engine import pixels
from training.world.scenes import Scene, Shape
from worker.engine import Engine
from worker.errors import BadRequest
from worker.outpaint import Layout, layout, outpaint_inputs
from worker.protocol import EditRequest, Pan, Size
from worker.settings import ModelPreset, world_preset

PAN_EXPECTED: dict[str, tuple[int, int]] = {"left": (21, 0), "right": (-21, 0), "up": (0, 21), "down": (0, -21)}


def noise_picture(size: tuple[int, int], seed: int = 3) -> Image.Image:
    """Random pixels: any pixel moved, blended or re-encoded shows."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), mode="RGB")


def as_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def assert_kept_and_painted(out: np.ndarray, picture: Image.Image, where: Layout) -> None:
    """Every visible pixel of the picture is where the layout puts it, exactly; the rest is newly painted."""
    left, top, right, bottom = where.kept
    placed = np.asarray(picture.resize((where.width, where.height), Image.Resampling.LANCZOS), dtype=np.int16)
    if picture.size == (where.width, where.height):
        placed = np.asarray(picture, dtype=np.int16)
    expected = placed[top - where.y : bottom - where.y, left - where.x : right - where.x]
    assert np.array_equal(out[top:bottom, left:right], expected)
    new = np.ones(out.shape[:2], dtype=bool)
    new[top:bottom, left:right] = False
    fill = np.asarray(outpaint_inputs(picture, where).image, dtype=np.int16)[new]
    assert new.any()
    # Painted: the pipeline's pixels, not the flat colour the canvas started with.
    assert (out[new] != fill).any(axis=-1).mean() > 0.5


# -- geometry (no model) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("picture", "zoom", "cap", "multiple", "expected"),
    [
        ((64, 64), 2.0, 128 * 128, 8, Layout(Size(width=128, height=128), 32, 32, 64, 64)),
        ((64, 64), 1.5, 128 * 128, 8, Layout(Size(width=96, height=96), 16, 16, 64, 64)),
        # Rounded down to the size step, the picture still fits unscaled: it keeps its own pixels.
        ((64, 64), 1.3, 128 * 128, 8, Layout(Size(width=80, height=80), 8, 8, 64, 64)),
        ((64, 48), 1.3, 128 * 128, 16, Layout(Size(width=80, height=48), 8, 0, 64, 48)),
        # Past the cap, canvas and picture shrink together.
        ((128, 128), 2.0, 128 * 128, 8, Layout(Size(width=128, height=128), 32, 32, 64, 64)),
        ((1024, 1024), 2.0, 2048 * 2048, 8, Layout(Size(width=2048, height=2048), 512, 512, 1024, 1024)),
        # The largest side (2048) bounds a 2x SDXL 3:2 picture before the pixel cap does.
        ((1216, 832), 2.0, 2048 * 2048, 16, Layout(Size(width=2048, height=1392), 512, 345, 1024, 701)),
    ],
)
def test_zoom_layouts(picture: tuple[int, int], zoom: float, cap: int, multiple: int, expected: Layout) -> None:
    assert layout(picture, zoom=zoom, pan=None, max_pixels=cap, multiple=multiple) == expected


@pytest.mark.parametrize("pan", ["left", "right", "up", "down"])
def test_pan_layouts_shift_by_a_third(pan: Pan) -> None:
    where = layout((64, 64), zoom=None, pan=pan, max_pixels=128 * 128, multiple=8)
    assert (where.canvas, where.width, where.height) == (Size(width=64, height=64), 64, 64)
    assert (where.x, where.y) == PAN_EXPECTED[pan]
    mask = np.asarray(outpaint_inputs(noise_picture((64, 64)), where).mask)
    # A third of the canvas is new, the rest is kept.
    assert (mask == 255).sum() == 21 * 64 and set(np.unique(mask)) == {0, 255}


def test_a_zoom_too_small_for_the_size_step_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"zoom 1\.05 adds no new pixels to a 64x64 picture") as caught:
        layout((64, 64), zoom=1.05, pan=None, max_pixels=128 * 128, multiple=16)
    assert caught.value.param == "zoom"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"zoom": 2.5}, "less than or equal to 2"),
        ({"zoom": 0.5}, "greater than or equal to 1"),
        ({"pan": "sideways"}, "'left', 'right', 'up' or 'down'"),
        ({"zoom": 1.5, "pan": "left"}, "one at a time"),
        ({"zoom": 1.5, "mask_prompt": "the sky"}, "leave out mask_prompt"),
        ({"pan": "up", "size": "64x64"}, "leave out size and aspect"),
    ],
)
def test_requests_are_checked_on_both_sides_of_the_wire(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EditRequest.model_validate({"prompt": "more sky", **fields})


# -- the tiny SDXL pipeline ---------------------------------------------------------
@pytest.mark.parametrize(("zoom", "canvas", "corner"), [(2.0, 128, 32), (1.5, 96, 16)])
def test_zoom_out_keeps_every_pixel_and_paints_the_rest(engine: Engine, zoom: float, canvas: int, corner: int) -> None:
    picture = noise_picture((64, 64))
    plan = engine.plan_edit(EditRequest(prompt="a wide field", zoom=zoom, seed=4, steps=2), as_png(picture), None)
    assert (plan.mode, plan.strength, plan.size) == ("inpaint", 1.0, Size(width=canvas, height=canvas))
    result = engine.render(plan)
    used = result.data[0].parameters
    assert (used.width, used.height, used.mode) == (canvas, canvas, "inpaint")
    assert used.outpaint is not None
    assert (used.outpaint.zoom, used.outpaint.x, used.outpaint.y, used.outpaint.width) == (zoom, corner, corner, 64)
    assert_kept_and_painted(pixels(result), picture, Layout(plan.size, corner, corner, 64, 64))


def test_zoom_past_the_cap_scales_down_and_keeps_the_scaled_pixels(engine: Engine) -> None:
    picture = noise_picture((128, 128))
    plan = engine.plan_edit(EditRequest(prompt="a wide field", zoom=2.0, seed=4, steps=2), as_png(picture), None)
    where = Layout(Size(width=128, height=128), 32, 32, 64, 64)  # 256x256 is past the preset's 128x128 cap
    assert plan.size == where.canvas
    assert_kept_and_painted(pixels(engine.render(plan)), picture, where)


@pytest.mark.parametrize("pan", ["left", "right", "up", "down"])
def test_pan_moves_the_content_by_a_third(engine: Engine, pan: Pan) -> None:
    picture = noise_picture((64, 64))
    plan = engine.plan_edit(EditRequest(prompt="more of the street", pan=pan, seed=4, steps=2), as_png(picture), None)
    out = pixels(engine.render(plan))
    source = np.asarray(picture, dtype=np.int16)
    dx, dy = PAN_EXPECTED[pan]
    # Content at (x, y) in the picture is at (x + dx, y + dy) in the result: 21 pixels, a third of 64.
    if pan == "right":
        assert np.array_equal(out[:, :43], source[:, 21:])
    elif pan == "left":
        assert np.array_equal(out[:, 21:], source[:, :43])
    elif pan == "down":
        assert np.array_equal(out[:43], source[21:])
    else:
        assert np.array_equal(out[21:], source[:43])
    assert_kept_and_painted(out, picture, Layout(Size(width=64, height=64), dx, dy, 64, 64))


def test_an_explicit_strength_is_kept(engine: Engine) -> None:
    plan = engine.plan_edit(EditRequest(prompt="x", zoom=2.0, strength=0.5), as_png(noise_picture((64, 64))), None)
    assert (plan.strength, plan.steps) == (0.5, 2)


def test_zoom_with_a_mask_or_a_transparent_picture_is_refused(engine: Engine) -> None:
    picture = noise_picture((64, 64))
    with pytest.raises(BadRequest, match="send an opaque picture and no mask"):
        engine.plan_edit(EditRequest(prompt="x", zoom=2.0), as_png(picture), as_png(picture))
    holed = picture.convert("RGBA")
    holed.putpixel((3, 3), (0, 0, 0, 0))
    with pytest.raises(BadRequest, match="send an opaque picture and no mask"):
        engine.plan_edit(EditRequest(prompt="x", pan="left"), as_png(holed), None)


def test_a_family_without_inpaint_is_refused_clearly(worker_cache: Path) -> None:
    instruct = ModelPreset(source="tiny", family="sd15-instruct", steps=2, width=64, height=64)
    engine = Engine(tiny_worker_settings(worker_cache, models={"edit": instruct}, default_model="edit"))
    with pytest.raises(BadRequest, match="model 'edit' \\(sd15-instruct\\) cannot zoom or pan: it has no inpaint"):
        engine.plan_edit(EditRequest(prompt="x", zoom=1.5), as_png(noise_picture((64, 64))), None)


# -- the world model ------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(worker_cache: Path) -> Engine:
    """The shipped world preset (sd15, 64x64, a 128x128 cap) on its stock inpaint pipeline."""
    engine = Engine(tiny_worker_settings(worker_cache, models={"world": world_preset()}, default_model="world"))
    engine.load()
    return engine


def test_world_zoom_and_pan_keep_the_scene(world: Engine) -> None:
    scene = Image.fromarray(Scene(background="white", shapes=(Shape("circle", "red", "large", (1, 1)),)).render())
    zoomed = world.plan_edit(EditRequest(prompt="a red circle", zoom=2.0, seed=1), as_png(scene), None)
    assert zoomed.size == Size(width=128, height=128)
    assert_kept_and_painted(pixels(world.render(zoomed)), scene, Layout(zoomed.size, 32, 32, 64, 64))
    panned = world.plan_edit(EditRequest(prompt="a red circle", pan="left", seed=1), as_png(scene), None)
    out = pixels(world.render(panned))
    assert np.array_equal(out[:, 21:], np.asarray(scene, dtype=np.int16)[:, :43])
    assert_kept_and_painted(out, scene, Layout(panned.size, 21, 0, 64, 64))


# -- over HTTP ----------------------------------------------------------------------------
async def post_form(url: str, picture: Image.Image, **fields: str) -> tuple[int, dict]:
    """POST a multipart edit (the picture as `image`, the fields as given); the status and the JSON body."""
    form = aiohttp.FormData()
    form.add_field("image", as_png(picture), filename="x.png", content_type="image/png")
    for name, value in fields.items():
        form.add_field(name, value)
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as resp:
        return resp.status, await resp.json()


async def test_zoom_and_pan_over_http(worker_url: str) -> None:
    picture = noise_picture((64, 64))
    edits, variations = worker_url + "/v1/images/edits", worker_url + "/v1/images/variations"
    status, body = await post_form(edits, picture, prompt="a wider view", zoom="1.5", seed="2")
    assert status == 200, body
    used = body["data"][0]["parameters"]
    assert (used["width"], used["height"], used["mode"], used["strength"]) == (96, 96, "inpaint", 1.0)
    assert used["outpaint"] == {"zoom": 1.5, "pan": None, "x": 16, "y": 16, "width": 64, "height": 64}
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))), dtype=np.int16)
    assert np.array_equal(out[16:80, 16:80], np.asarray(picture, dtype=np.int16))
    status, body = await post_form(edits, picture, prompt="a wider view", zoom="3")
    assert (status, body["error"]["param"]) == (400, "zoom")
    status, body = await post_form(variations, picture, pan="left")
    assert (status, body["error"]["message"]) == (400, "zoom and pan are edits: use /v1/images/edits")
