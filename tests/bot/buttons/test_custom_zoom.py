"""🔧 Custom Zoom through the fake Discord: a form for the zoom and the prompt; out of bounds, a polite word at once."""

from __future__ import annotations

from typing import Any

import pytest

from bot.buttons.custom_zoom import ZOOM_BOUNDS, read_zoom
from egaku.config import Config
from tests.bot.buttons.pressing import check_outpainted, outpainting, sent, shown_id
from tests.bot.test_buttons import callback_of, first_image, followup_of
from tests.bot.test_conversation import KING, live
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker

QUEEN = "A regal red squirrel queen in a wide autumn forest clearing, golden light"


@pytest.mark.parametrize(
    ("typed", "zoom"),
    [("1.5", 1.5), (" 2 ", 2.0), ("1,25", 1.25), ("1.75x", 1.75), ("×1.2", 1.2), ("1.0", 1.0),
     ("１．５", 1.5), ("２", 2.0),  # a Japanese IME's full-width digits
     ("2.01", None), ("0.5", None), ("-1.5", None), ("nan", None), ("inf", None), ("", None), ("big", None)],
)  # fmt: skip
def test_the_zoom_typed_is_read_from_1_to_2(typed: str, zoom: float | None) -> None:
    assert read_zoom(typed) == zoom


async def test_custom_zoom_asks_for_the_zoom_and_the_prompt_after_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        first, message_id, gid = await first_image(fake_discord, fake_openai)

    async with live(app_config, fake_openai, recorder, fake_discord) as app:  # a new process, the same history

        async def form() -> dict[str, Any]:
            press = await fake_discord.press(f"egaku:zoom:{gid}", message_id)
            return dict((await fake_discord.wait_for_request(callback_of(press))).json)

        async def submit(modal: dict[str, Any], zoom: str, prompt: str) -> dict[str, Any]:
            zoom_input, prompt_input = (row["components"][0] for row in modal["data"]["components"])
            values = {zoom_input["custom_id"]: zoom, prompt_input["custom_id"]: prompt}
            return await fake_discord.submit_modal(modal["data"]["custom_id"], values)

        modal = await form()
        refusals = []
        for wrong in ("3", "a lot"):
            refused = await submit(modal, wrong, KING)
            refusals.append((await fake_discord.wait_for_request(callback_of(refused))).json)
            modal = await form()  # Discord closes a form on any answer: the user presses again
        drawn = await submit(modal, "1,25", QUEEN)
        post = await fake_discord.wait_for_request(followup_of(drawn))
        kept = await app.history.get(shown_id(post))
    zoom_input, prompt_input = (row["components"][0] for row in modal["data"]["components"])
    assert (modal["type"], modal["data"]["title"]) == (9, "Custom zoom")
    assert (zoom_input["label"], zoom_input["value"]) == ("Zoom out (1.0 to 2.0)", "1.5")
    assert (prompt_input["label"], prompt_input["value"]) == ("Prompt", KING)  # prefilled with the picture's
    polite = {"tts": False, "content": str(ZOOM_BOUNDS), "flags": 64, "allowed_mentions": {"parse": []}}
    assert refusals == [{"type": 4, "data": polite}] * 2  # at once, and only the presser sees it
    assert str(ZOOM_BOUNDS) == "Zoom out takes a number from 1.0 to 2.0, such as 1.5."
    _, zoom = recorder.received  # nothing went to the worker for the refused ones
    assert sent(zoom) == outpainting(QUEEN, zoom="1.25")
    where = {"zoom": 1.25, "pan": None, "x": 8, "y": 8, "width": 64, "height": 64}  # 64 × 1.25 = 80
    check_outpainted(zoom, post, first.files[0].data, where)
    assert kept is not None and (kept.kind, kept.parent_id, kept.prompt) == ("zoom", gid, QUEEN)


async def test_custom_zoom_speaks_the_pressers_language(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        _, message_id, gid = await first_image(fake_discord, fake_openai)
        press = await fake_discord.press(f"egaku:zoom:{gid}", message_id, locale="ja")
        modal = dict((await fake_discord.wait_for_request(callback_of(press))).json)
        zoom_input, prompt_input = (row["components"][0] for row in modal["data"]["components"])
        values = {zoom_input["custom_id"]: "3", prompt_input["custom_id"]: KING}
        refused = await fake_discord.submit_modal(modal["data"]["custom_id"], values, locale="ja")
        refusal = (await fake_discord.wait_for_request(callback_of(refused))).json
    assert (modal["data"]["title"], zoom_input["label"], prompt_input["label"]) == (
        "カスタムズーム", "ズームアウト(1.0〜2.0)", "プロンプト",
    )  # fmt: skip
    assert refusal["data"]["content"] == "ズームアウトには 1.0 から 2.0 までの数を入れてください(たとえば 1.5)。"
    assert len(recorder.received) == 1  # only the first picture reached the worker
