"""Pressing a result's buttons through the fake Discord, across a restart, and reading what came of it."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from egaku.config import Config
from tests.bot.test_buttons import custom_ids, first_image, followup_of
from tests.bot.test_conversation import KING, live
from tests.fakes.discord import Captured, FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import Received, RecordingWorker
from tools.stores.history import Generation


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


@dataclass(frozen=True)
class Pressed:
    """A picture drawn first, then the results of the presses on it, in order, and their history entries."""

    first: Captured
    gid: str
    posts: list[Captured]
    kept: list[Generation | None]

    @property
    def parent(self) -> bytes:
        """The picture pressed, as it was posted."""
        return self.first.files[0].data


async def press_across_a_restart(
    config: Config, llm: FakeOpenAI, worker: RecordingWorker, fake: FakeDiscord,
    before: Sequence[str], after: Sequence[str],
) -> Pressed:  # fmt: skip
    """Draw the squirrel king, press `before` on it, restart (a new process, the same history), press `after`."""
    posts: list[Captured] = []

    async def press(action: str, message_id: int, gid: str) -> None:
        interaction = await fake.press(f"egaku:{action}:{gid}", message_id)
        posts.append(await fake.wait_for_request(followup_of(interaction)))

    async with live(config, llm, worker, fake):
        first, message_id, gid = await first_image(fake, llm)
        for action in before:
            await press(action, message_id, gid)
    async with live(config, llm, worker, fake) as app:
        for action in after:
            await press(action, message_id, gid)
        kept = [await app.history.get(shown_id(post)) for post in posts]
    return Pressed(first, gid, posts, kept)


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
