"""Captions for uploads and edits: what the model is told about a picture, asserted in the exact LLM request."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from agent.prompts import SYSTEM_PROMPT
from agent.seeing import THUMBNAIL_SIDE
from agent.service import TurnRequest, with_attachment
from egaku.config import Config
from tests.agent.test_agent import configured, running
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.stores.history import Generation, History

NOTE_HEAD = "This user's images here, oldest first (#n is the ordinal they may use):\n"


def photo(width: int = 640, height: int = 480) -> bytes:
    """A picture larger than a thumbnail."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def upload(history: History, message_id: str, user: str = "id-alice") -> Generation:
    """An attachment recorded the way the chat extension records it."""
    return await history.add(
        photo(), conversation="c1", user_id=user, message_id=message_id, user_words="make this a watercolour",
        prompt="(uploaded image cat.png)", negative_prompt=None, seed=0, width=640, height=480, steps=0, model="",
        kind="upload",
    )  # fmt: skip


def no_pixels(requests: list[dict[str, Any]]) -> bool:
    """No PNG, JPEG or data URL anywhere in the LLM traffic."""
    text = str(requests)
    return not any(marker in text for marker in ("iVBOR", "/9j/", "data:image"))


async def test_an_upload_is_captioned_once_and_the_caption_reaches_the_model(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker
) -> None:
    fake_openai.then(Say("A watercolour, coming up?"), Say("Still here."))
    async with running(configured(app_config, fake_openai.base_url, recorder.url)) as app:
        cat = await upload(app.history, "m1")
        text = with_attachment("make this a watercolour", cat.id)
        await app.agent.respond(TurnRequest.of("c1", "id-alice", "alice", text, source_id="m1"))
        await app.agent.respond(TurnRequest.of("c1", "id-alice", "alice", "are you there?", source_id="m2"))
        caption = (await app.history.get(cat.id)).caption  # type: ignore[union-attr]
    assert caption  # the worker's (tiny, random) captioner's words
    described = [r for r in recorder.received if r.path == "/v1/images/descriptions"]
    assert [r.answer["prompt"] for r in described] == [caption]  # made once, then kept in the history
    note = f"{NOTE_HEAD}#1 id={cat.id} (upload): (uploaded image cat.png); it shows: {caption}"
    assert fake_openai.requests[0]["messages"] == [
        {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{note}"},
        {"role": "user", "content": f"[alice] make this a watercolour\n(attached image: id={cat.id})"},
    ]
    assert fake_openai.requests[1]["messages"][0] == {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{note}"}
    assert no_pixels(fake_openai.requests)


async def test_the_image_a_user_replies_to_is_described_before_the_edit_prompt(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": "a lighthouse on a rocky shore at dusk, digital painting"}),
        Say("Here it is."),
    )
    config = configured(app_config, fake_openai.base_url, recorder.url)
    async with running(config) as app:
        drawn = await app.agent.respond(TurnRequest.of("c1", "id-alice", "alice", "draw a lighthouse", source_id="m1"))
        [image] = drawn.images
        assert image.id is not None
        await app.history.attach_message([image.id], "m2")  # the bot's message that shows it
        fake_openai.then(Call("edit_image", {"ref": "reply", "prompt": "the lighthouse at noon", "mode": "subtle"}))
        fake_openai.then(Say("Brighter now."))
        edit = await app.agent.respond(TurnRequest.of("c1", "id-alice", "alice", "make it brighter", reply_to="m2"))
        caption = (await app.history.get(image.id)).caption  # type: ignore[union-attr]
    assert caption and [i.parent_id for i in edit.images] == [image.id]
    line = f"id={image.id} (generate): a lighthouse on a rocky shore at dusk, digital painting; it shows: {caption}"
    note = f"{NOTE_HEAD}#1 {line}\nThe user replied to the message showing this image (ref 'reply'): {line}"
    asked = fake_openai.requests[2]["messages"]  # the edit turn's first model call
    assert asked[0] == {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{note}"}
    assert asked[-1] == {"role": "user", "content": "[alice] (replying to your message) make it brighter"}
    assert no_pixels(fake_openai.requests)


async def test_a_captioner_that_fails_does_not_stop_the_turn(app_config: Config, fake_openai: FakeOpenAI) -> None:
    fake_openai.then(Say("Got it."))
    async with running(configured(app_config, fake_openai.base_url, "http://127.0.0.1:9")) as app:  # worker down
        cat = await upload(app.history, "m1")
        result = await app.agent.respond(
            TurnRequest.of("c1", "id-alice", "alice", with_attachment("hi", cat.id), source_id="m1")
        )
    assert result.reply == "Got it."
    note = f"{NOTE_HEAD}#1 id={cat.id} (upload): (uploaded image cat.png)"
    assert fake_openai.requests[0]["messages"][0] == {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{note}"}


async def test_with_vision_the_model_sees_a_thumbnail_and_no_caption_is_made(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker
) -> None:
    fake_openai.then(Say("A cat! Lovely."))
    config = configured(app_config, fake_openai.base_url, recorder.url)
    config = config.model_copy(update={"llm": config.llm.model_copy(update={"vision": True})})
    async with running(config) as app:
        cat = await upload(app.history, "m1")
        text = with_attachment("what is this?", cat.id)
        await app.agent.respond(TurnRequest.of("c1", "id-alice", "alice", text, source_id="m1"))
    assert recorder.received == []  # no captioner call
    system, user = fake_openai.requests[0]["messages"]
    assert system == {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{NOTE_HEAD}#1 id={cat.id} (upload): "
                      "(uploaded image cat.png)"}  # fmt: skip
    words, picture = user["content"]
    assert words == {"type": "text", "text": f"[alice] what is this?\n(attached image: id={cat.id})"}
    assert picture["type"] == "image_url"
    url = picture["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 3 // 4))
