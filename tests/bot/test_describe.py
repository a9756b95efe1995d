"""/describe over the fake Discord: an upload in, the worker's English prompt out, then "Imagine this"."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from egaku.config import Config
from tests.bot.test_buttons import callback_of, followup_of
from tests.bot.test_conversation import live
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.checks.uploads import check_image


def png(colour: str = "orange", size: tuple[int, int] = (80, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def describe(fake: FakeDiscord, data: bytes, content_type: str = "image/png") -> dict:
    attachment = fake.attachment(data, "photo.png", content_type)
    option = {"name": "image", "type": 11, "value": attachment["id"]}
    return await fake.slash_command("describe", [option], attachments=[attachment])


async def test_describe_answers_the_workers_prompt_and_imagine_this_draws_it_after_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    upload = png()
    async with live(app_config, fake_openai, recorder, fake_discord):
        interaction = await describe(fake_discord, upload)
        answer = await fake_discord.wait_for_request(followup_of(interaction))
    callback = next(r for r in fake_discord.requests if callback_of(interaction)(r))
    assert callback.json == {"type": 5}  # deferred before the download and the captioner
    (received,) = [r for r in recorder.received if r.path == "/v1/images/descriptions"]
    assert received.files == {"image": hashlib.sha256(check_image(upload, "photo.png").png).hexdigest()}
    prompt = received.answer["prompt"]
    assert prompt  # the tiny captioner's words
    (embed,) = answer.json["embeds"]
    assert (embed["title"], embed["description"]) == ("A prompt for your picture", prompt)
    assert embed["thumbnail"]["url"].endswith("/photo.png")
    assert answer.json["components"][0]["components"][0]["custom_id"] == "egaku:imagine-this"
    assert answer.json["allowed_mentions"] == {"parse": []}

    message_id = max(fake_discord.messages)  # the followup just posted
    fake_openai.then(Call("generate_image", {"prompt": "a red fox in the snow, detailed"}), Say("Drawn."))
    async with live(app_config, fake_openai, recorder, fake_discord):  # a new process: nothing in memory
        press = await fake_discord.press("egaku:imagine-this", message_id, user_id=21, user_name="bob")
        modal = (await fake_discord.wait_for_request(callback_of(press))).json
        text_input = modal["data"]["components"][0]["components"][0]
        submit = await fake_discord.submit_modal(modal["data"]["custom_id"], {text_input["custom_id"]: prompt})
        drawn = await fake_discord.wait_for_request(followup_of(submit))
    assert (modal["type"], text_input["value"]) == (9, prompt)  # anyone may draw it; prefilled
    assert fake_openai.requests[0]["messages"][-1]["content"] == f"[alice] /imagine {prompt}"
    assert drawn.json["content"] == "Drawn."
    assert drawn.json["embeds"][0]["description"] == "a red fox in the snow, detailed"
    assert len(drawn.files) == 1


async def test_describe_refuses_what_it_cannot_read(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        text = await describe(fake_discord, b"hello", "text/plain")
        refused = await fake_discord.wait_for_request(callback_of(text))
        broken = await describe(fake_discord, b"\x89PNG\r\n\x1a\n truncated")
        failed = await fake_discord.wait_for_request(followup_of(broken))
    assert refused.json["type"] == 4
    assert (refused.json["data"]["content"], refused.json["data"]["flags"]) == (
        "That isn't a picture I can read. Please attach a PNG, JPEG, WebP or GIF.", 64,
    )  # fmt: skip
    assert failed.json["content"] == (
        "I couldn't use that image: couldn't read that image: the file is damaged or truncated."
    )
    assert failed.json["flags"] == 64
    assert [r for r in recorder.received if r.path == "/v1/images/descriptions"] == []  # nothing reached the GPU
