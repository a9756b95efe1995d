"""🔭 Zoom Out 1.5× and 2× through the fake Discord: before and after a restart, exactly what the worker received."""

from __future__ import annotations

from egaku.config import Config
from tests.bot.buttons.pressing import check_outpainted, outpainting, press_across_a_restart, sent, sha
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker


async def test_zoom_out_15_and_2_paint_a_border_around_the_picture_across_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    pressed = await press_across_a_restart(app_config, fake_openai, recorder, fake_discord, ["zoom15"], ["zoom2"])
    drawn, *zooms = recorder.received
    assert drawn.answer["data"][0]["sha256"] == sha(pressed.parent)
    for zoom, factor, side, post in zip(zooms, ("1.5", "2.0"), (96, 128), pressed.posts, strict=True):
        assert sent(zoom) == outpainting(zoom=factor)
        border = (side - 64) // 2
        where = {"zoom": float(factor), "pan": None, "x": border, "y": border, "width": 64, "height": 64}
        check_outpainted(zoom, post, pressed.parent, where)
        assert post.json["embeds"][0]["footer"]["text"] == f"seed 77 · {side}×{side} · 2 steps · tiny"
    assert [(g.kind, g.parent_id, g.width, g.height) for g in pressed.kept if g] == [
        ("zoom", pressed.gid, 96, 96), ("zoom", pressed.gid, 128, 128),
    ]  # fmt: skip
