"""🔍 Upscale 2× and 🔎 4× through the fake Discord: the worker's upscaler when it has one; else the creative
upscale, and the labels say so. Before and after a restart, exactly what the worker received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.buttons.upscale import FALLBACK_2X, FALLBACK_4X
from egaku.config import Config
from tests.bot.buttons.pressing import press_across_a_restart, sent, sha
from tests.bot.test_conversation import KING
from tests.conftest import recorded_worker, tiny_worker_settings
from tests.fakes.discord import Captured, FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker
from tests.fakes.upscalers import esrgan_file, import_spandrel

UPSCALER = "4x-tiny-esrgan.safetensors"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 4x ESRGAN with random weights, as an operator's safetensors file."""
    import_spandrel()
    return esrgan_file(tmp_path_factory.mktemp("upscaler") / UPSCALER)


@pytest.fixture
async def upscaling(worker_cache: Path, weights: Path) -> AsyncIterator[RecordingWorker]:
    """The real tiny worker with `[worker] upscaler` set, behind the recording proxy."""
    async with recorded_worker(tiny_worker_settings(worker_cache, upscaler=str(weights)), "tiny") as (_, recorder):
        yield recorder


def labels(post: Captured) -> list[list[str]]:
    return [[c.get("label", "") for c in row["components"]] for row in post.json["components"]]


async def test_the_upscale_buttons_use_the_workers_upscaler_across_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, upscaling: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    pressed = await press_across_a_restart(app_config, fake_openai, upscaling, fake_discord, ["upscale2"], ["upscale4"])
    assert labels(pressed.first)[1] == ["Upscale 2×", "Upscale 4×", "Upscale (creative)"]
    _, *upscales = upscaling.received
    for received, post, scale in zip(upscales, pressed.posts, (2, 4), strict=True):
        side = 64 * scale
        assert received.path == "/v1/images/upscales"
        assert (sent(received), received.files) == ({"scale": str(scale)}, {"image": sha(pressed.parent)})
        answer = received.answer
        assert (answer["size"], answer["scale"], answer["model"]) == (f"{side}x{side}", scale, UPSCALER)
        assert [sha(f.data) for f in post.files] == [answer["data"][0]["sha256"]]  # posted as the worker made it
        # The picture's own seed, steps and preset: later edits of it draw with them.
        assert post.json["embeds"][0]["footer"]["text"] == f"seed 77 · {side}×{side} · 2 steps · tiny"
        assert labels(post)[1] == ["Upscale 2×", "Upscale 4×", "Upscale (creative)"]
    assert [(g.kind, g.parent_id, g.width, g.prompt) for g in pressed.kept if g] == [
        ("upscale", pressed.gid, 128, KING), ("upscale", pressed.gid, 256, KING),
    ]  # fmt: skip


async def test_without_an_upscaler_the_plain_buttons_say_so_and_draw_the_creative_upscale(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    pressed = await press_across_a_restart(
        app_config, fake_openai, recorder, fake_discord, [], ["upscale2", "upscale4", "upscale"]
    )
    assert labels(pressed.first)[1] == [str(FALLBACK_2X), str(FALLBACK_4X), "Upscale (creative)"]
    assert (str(FALLBACK_2X), str(FALLBACK_4X)) == (
        "Upscale 2× (creative: no upscaler)",
        "Upscale 4× → 2× (creative: no upscaler)",
    )
    _, *creative = recorder.received
    # All three are the creative upscale: the picture redrawn at twice its size, at the upscale's low strength.
    assert [(r.path, r.fields["size"], r.fields["strength"], r.fields["seed"]) for r in creative] == [
        ("/v1/images/edits", "128x128", "0.3", "77")
    ] * 3
    assert {r.files["image"] for r in creative} == {sha(pressed.parent)}
    assert [(g.kind, g.parent_id, g.width) for g in pressed.kept if g] == [("strong", pressed.gid, 128)] * 3
