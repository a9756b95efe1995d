"""⬅️ ➡️ ⬆️ ⬇️ Pan through the fake Discord: each moves the view a third, before and after a restart."""

from __future__ import annotations

from egaku.config import Config
from tests.bot.buttons.test_zoom import check_outpainted, outpainting, sent, shown_id
from tests.bot.test_buttons import first_image, followup_of
from tests.bot.test_conversation import live
from tests.fakes.discord import Captured, FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker

THIRD = 64 // 3  # of the 64-pixel picture: the view moves 21 pixels, the canvas stays 64×64
# Where the picture lands for each pan: "left" looks left, so the picture slides right and a strip appears on the left.
PLACES = {"left": (THIRD, 0), "right": (-THIRD, 0), "up": (0, THIRD), "down": (0, -THIRD)}


async def test_the_four_pans_move_the_view_a_third_and_keep_the_rest_across_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    posts: dict[str, Captured] = {}

    async def pan(direction: str, message_id: int, gid: str) -> None:
        press = await fake_discord.press(f"egaku:pan{direction}:{gid}", message_id)
        posts[direction] = await fake_discord.wait_for_request(followup_of(press))

    async with live(app_config, fake_openai, recorder, fake_discord):
        first, message_id, gid = await first_image(fake_discord, fake_openai)
        await pan("left", message_id, gid)
        await pan("up", message_id, gid)
    async with live(app_config, fake_openai, recorder, fake_discord) as app:  # a new process, the same history
        await pan("right", message_id, gid)
        await pan("down", message_id, gid)
        kept = {direction: await app.history.get(shown_id(post)) for direction, post in posts.items()}
    _, *pans = recorder.received
    assert [r.fields["pan"] for r in pans] == ["left", "up", "right", "down"]
    for received in pans:
        direction = received.fields["pan"]
        assert sent(received) == outpainting(pan=direction)
        x, y = PLACES[direction]
        where = {"zoom": None, "pan": direction, "x": x, "y": y, "width": 64, "height": 64}
        check_outpainted(received, posts[direction], first.files[0].data, where)
        assert posts[direction].json["embeds"][0]["footer"]["text"] == "seed 77 · 64×64 · 2 steps · tiny"
    assert {d: (g.kind, g.parent_id) for d, g in kept.items() if g} == {d: ("pan", gid) for d in PLACES}
