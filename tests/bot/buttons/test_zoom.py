"""🔭 Zoom Out 1.5× and 2× through the fake Discord: before and after a restart, exactly what the worker received."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
from PIL import Image

from egaku.config import Config
from tests.bot.test_buttons import custom_ids, first_image, followup_of
from tests.bot.test_conversation import KING, live
from tests.fakes.discord import Captured, FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import Received, RecordingWorker


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def shown_id(post: Captured) -> str:
    """The history id a posted result's buttons carry."""
    return str(custom_ids(post)[0].rsplit(":", 1)[1])


def sent(received: Received) -> dict[str, Any]:
    """The fields the worker got, but the job id (a fresh one each time)."""
    assert received.fields["job_id"]
    return {name: value for name, value in received.fields.items() if name != "job_id"}


def outpainting(prompt: str = KING, **field: str) -> dict[str, Any]:
    """What an outpainting press sends: the prompt, the picture's seed and preset, the zoom or pan; no size,
    strength or mask (the worker sizes the canvas and paints the new area from noise)."""
    return {"prompt": prompt, "model": "tiny", "user": "20", "seed": "77", **field,
            "stream": "true", "stream_format": "egaku"}  # fmt: skip


def check_outpainted(received: Received, post: Captured, parent: bytes, where: dict[str, Any]) -> None:
    """The pressed picture went alone; the worker put it `where`; it came back, was posted, and kept every pixel."""
    assert (received.path, received.files) == ("/v1/images/edits", {"image": sha(parent)})
    (answer,) = received.answer["data"]
    assert answer["parameters"]["outpaint"] == where
    assert [sha(f.data) for f in post.files] == [answer["sha256"]]  # the worker's picture, posted as it came
    canvas, picture = pixels(post.files[0].data), pixels(parent)
    x, y, width, height = where["x"], where["y"], where["width"], where["height"]
    left, top = max(0, x), max(0, y)
    right, bottom = min(canvas.shape[1], x + width), min(canvas.shape[0], y + height)
    assert np.array_equal(canvas[top:bottom, left:right], picture[top - y : bottom - y, left - x : right - x])
    assert (bottom - top) * (right - left) < canvas.shape[0] * canvas.shape[1]  # and something new was painted
    assert custom_ids(post)[0].startswith("egaku:reroll:")  # the new picture has its own buttons


async def test_zoom_out_15_and_2_paint_a_border_around_the_picture_across_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        first, message_id, gid = await first_image(fake_discord, fake_openai)
        press = await fake_discord.press(f"egaku:zoom15:{gid}", message_id)
        wider = await fake_discord.wait_for_request(followup_of(press))
    async with live(app_config, fake_openai, recorder, fake_discord) as app:  # a new process, the same history
        press = await fake_discord.press(f"egaku:zoom2:{gid}", message_id)
        widest = await fake_discord.wait_for_request(followup_of(press))
        kept = [await app.history.get(shown_id(post)) for post in (wider, widest)]
    drawn, *zooms = recorder.received
    parent = first.files[0].data
    assert drawn.answer["data"][0]["sha256"] == sha(parent)
    for zoom, factor, side, post in zip(zooms, ("1.5", "2.0"), (96, 128), (wider, widest), strict=True):
        assert sent(zoom) == outpainting(zoom=factor)
        border = (side - 64) // 2
        where = {"zoom": float(factor), "pan": None, "x": border, "y": border, "width": 64, "height": 64}
        check_outpainted(zoom, post, parent, where)
        assert post.json["embeds"][0]["footer"]["text"] == f"seed 77 · {side}×{side} · 2 steps · tiny"
    assert [(g.kind, g.parent_id, g.width, g.height) for g in kept if g] == [
        ("zoom", gid, 96, 96), ("zoom", gid, 128, 128),
    ]  # fmt: skip
