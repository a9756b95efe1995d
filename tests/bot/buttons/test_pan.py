"""⬅️ ➡️ ⬆️ ⬇️ Pan through the fake Discord: each moves the view a third, before and after a restart."""

from __future__ import annotations

from egaku.config import Config
from tests.bot.buttons.pressing import check_outpainted, outpainting, press_across_a_restart, sent
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker

THIRD = 64 // 3  # of the 64-pixel picture: the view moves 21 pixels, the canvas stays 64×64
# Where the picture lands for each pan: "left" looks left, so the picture slides right and a strip appears on the left.
PLACES = {"left": (THIRD, 0), "up": (0, THIRD), "right": (-THIRD, 0), "down": (0, -THIRD)}


async def test_the_four_pans_move_the_view_a_third_and_keep_the_rest_across_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    pressed = await press_across_a_restart(
        app_config, fake_openai, recorder, fake_discord, ["panleft", "panup"], ["panright", "pandown"]
    )
    _, *pans = recorder.received
    assert [r.fields["pan"] for r in pans] == list(PLACES)
    for received, post in zip(pans, pressed.posts, strict=True):
        direction = received.fields["pan"]
        assert sent(received) == outpainting(pan=direction)
        x, y = PLACES[direction]
        where = {"zoom": None, "pan": direction, "x": x, "y": y, "width": 64, "height": 64}
        check_outpainted(received, post, pressed.parent, where)
        assert post.json["embeds"][0]["footer"]["text"] == "seed 77 · 64×64 · 2 steps · tiny"
    assert [(g.kind, g.parent_id) for g in pressed.kept if g] == [("pan", pressed.gid)] * 4
