"""/teach and /concepts over the fake Discord, with the real worker (short training runs) behind a recorder."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from egaku.config import Config
from tests.bot.test_buttons import callback_of, followup_of
from tests.bot.test_conversation import live, say
from tests.bot.test_imagine import synced_commands
from tests.conftest import recorded_worker, tiny_worker_settings
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tests.worker.test_teach import PICTURES
from tools.checks.uploads import check_image
from tools.service.requests import Requester
from tools.service.teaching import Taught
from worker.protocol import ProgressEvent
from worker.settings import TeachSettings

MOON = "a photo of <our-mascot> standing on the moon, earth in the black sky, soft rim light"


async def teach(fake: FakeDiscord, pictures: list[bytes], name: str = "our-mascot", **extra: Any) -> dict[str, Any]:
    attachments = [fake.attachment(data, f"p{n}.png") for n, data in enumerate(pictures)]
    options: list[dict[str, Any]] = [{"name": "name", "type": 3, "value": name}]
    options += [{"name": f"image{n + 1}", "type": 11, "value": a["id"]} for n, a in enumerate(attachments)]
    options += [{"name": key, "type": 3, "value": value} for key, value in extra.items()]
    return await fake.slash_command("teach", options, attachments=attachments)


async def concepts(fake: FakeDiscord, sub: str, member_permissions: str | None = None, **values: str) -> str:
    options = [{"name": key, "type": 3, "value": value} for key, value in values.items()]
    interaction = await fake.slash_command(
        "concepts", [{"name": sub, "type": 1, "options": options}], member_permissions=member_permissions
    )
    answer = await fake.wait_for_request(callback_of(interaction))
    assert answer.json["type"] == 4 and answer.json["data"]["flags"] == 64  # ephemeral
    return str(answer.json["data"]["content"])


async def test_teach_learns_a_word_with_a_status_message_and_the_chat_uses_it_in_any_language(
    app_config: Config, fake_openai: FakeOpenAI, teach_worker: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, teach_worker, fake_discord):
        interaction = await teach(fake_discord, PICTURES, like="toy")
        done = await fake_discord.wait_for_request(followup_of(interaction), timeout=120)
        fake_openai.then(Call("generate_image", {"prompt": MOON, "seed": 3}), Say("月の上のマスコットです！"))
        answer = await say(fake_discord, f"<@{BOT_ID}> うちの<our-mascot>を月に描いて")
    assert next(r for r in fake_discord.requests if callback_of(interaction)(r)).json == {"type": 5}
    assert done.json["content"].startswith("I learned **<our-mascot>** from 3 pictures (4 steps, loss ")
    assert done.json["content"].endswith(
        "Use it in any request here, in any language: `draw <our-mascot> on the moon`."
    )
    (status,) = [r for r in fake_discord.requests if is_status(r)]
    assert status.json["allowed_mentions"] == {"parse": []}
    assert any(r.method == "DELETE" and "/messages/" in r.path for r in fake_discord.requests)  # gone when done
    (trained,) = [r for r in teach_worker.received if r.path == "/v1/concepts/train"]
    assert (trained.fields["token"], trained.fields["init_word"]) == ("<our-mascot>", "toy")
    system = fake_openai.requests[0]["messages"][0]["content"]
    assert "Words this server taught the image model: <our-mascot>." in system  # the agent is told the word
    (drawn,) = [r for r in teach_worker.received if r.path == "/v1/images/generations"]
    assert drawn.fields["prompt"] == MOON
    assert [c["token"] for c in drawn.fields["concepts"]] == ["<our-mascot>"]  # the worker loads it for this request
    assert answer.json["content"] == "月の上のマスコットです！"


async def test_a_bad_upload_is_refused_before_any_training(
    app_config: Config, fake_openai: FakeOpenAI, teach_worker: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, teach_worker, fake_discord):
        broken = await teach(fake_discord, [*PICTURES[:2], b"\x89PNG\r\n\x1a\n truncated"])
        failed = await fake_discord.wait_for_request(followup_of(broken))
        bomb = await teach(fake_discord, [*PICTURES[:2], bomb_png()])
        refused_bomb = await fake_discord.wait_for_request(followup_of(bomb))
        text = fake_discord.attachment(b"hello", "notes.txt", "text/plain")
        options = [{"name": "name", "type": 3, "value": "mascot"}]
        options += [{"name": f"image{n}", "type": 11, "value": text["id"]} for n in (1, 2, 3)]
        not_images = await fake_discord.slash_command("teach", options, attachments=[text])
        refused = await fake_discord.wait_for_request(callback_of(not_images))
        bad_name = await teach(fake_discord, PICTURES, name="our mascot!")
        refused_name = await fake_discord.wait_for_request(callback_of(bad_name))
    assert failed.json["content"] == (
        "I couldn't use that image: couldn't read that image: the file is damaged or truncated."
    )
    assert failed.json["flags"] == 64
    assert refused_bomb.json["content"].startswith("I couldn't use that image: the image is too large")
    assert refused.json["data"] == {
        "content": "That isn't a picture I can read. Please attach a PNG, JPEG, WebP or GIF.", "flags": 64,
        "tts": False, "allowed_mentions": {"parse": []},
    }  # fmt: skip
    assert refused_name.json["data"]["content"].startswith("I can't use that name: a word's name is 1 to 31")
    assert [r for r in teach_worker.received if r.path == "/v1/concepts/train"] == []  # no training started


@pytest.fixture
async def long_lessons(worker_cache: Path) -> AsyncIterator[RecordingWorker]:
    """The real worker whose training runs are long (1000 steps in chunks of 2), behind the recorder."""
    settings = tiny_worker_settings(worker_cache, teach=TeachSettings(steps=1000, chunk_steps=2))
    async with recorded_worker(settings, "tiny") as (_engine, recorder):
        yield recorder


async def test_the_cancel_button_stops_the_training_and_no_word_is_kept(
    app_config: Config, fake_openai: FakeOpenAI, long_lessons: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, long_lessons, fake_discord) as app:
        interaction = await teach(fake_discord, PICTURES)
        # Pressed at once: the cancel may reach the worker before the lesson does, and must still stop it.
        status = await fake_discord.wait_for_request(is_status, timeout=120)
        (button,) = status.json["components"][0]["components"]
        message_id = max(fake_discord.messages)
        other = await fake_discord.press(button["custom_id"], message_id, user_id=21, user_name="bob")
        refused = await fake_discord.wait_for_request(callback_of(other))
        press = await fake_discord.press(button["custom_id"], message_id)
        pressed = await fake_discord.wait_for_request(callback_of(press))
        done = await fake_discord.wait_for_request(followup_of(interaction), timeout=120)
        assert app.concepts is not None
        kept = await app.concepts.store.of("1000")
    assert refused.json["data"]["content"] == "Only the person who asked can cancel it."
    assert pressed.json["data"]["content"] == "Cancelling…"
    assert (done.json["content"], done.json["flags"]) == ("Cancelled.", 64)
    assert kept == []


def is_status(request: Captured) -> bool:
    """The status message: posted in the channel with a cancel button."""
    return (
        request.method == "POST" and request.path.endswith(f"/channels/{CHANNEL_ID}/messages")
        and "egaku:cancel:" in str((request.json or {}).get("components", ""))
    )  # fmt: skip


def bomb_png() -> bytes:
    """A small PNG file that decodes to 400 MP."""
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_concepts_are_for_moderators_who_list_rename_and_delete(
    app_config: Config, fake_openai: FakeOpenAI, teach_worker: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, teach_worker, fake_discord) as app:
        assert app.concepts is not None
        who = Requester(user_id="20", user_words="/teach", guild_id="1000")
        uploads = [check_image(p, "p.png") for p in PICTURES]
        taught = await app.concepts.teach(who, "mascot", uploads)
        assert isinstance(taught, Taught)
        refused = await concepts(fake_discord, "list", member_permissions="0")
        listed = await concepts(fake_discord, "list")
        renamed = await concepts(fake_discord, "rename", name="mascot", new_name="our-bear")
        missing = await concepts(fake_discord, "delete", name="mascot")
        deleted = await concepts(fake_discord, "delete", name="our-bear")
        refused_delete = await concepts(fake_discord, "delete", member_permissions="0", name="our-bear")
        empty = await concepts(fake_discord, "list")
        file = app.concepts.store.path(taught.concept.file)
    assert refused == refused_delete == "Only members with the Manage Server permission can manage this server's words."
    assert listed.startswith("**<mascot>** · taught by <@20> on ") and listed.endswith(" · model tiny · 3 pictures")
    assert renamed == "Renamed to **<our-bear>**."
    assert missing == "this server has no word <mascot>."
    assert deleted == "Forgot **<our-bear>** and deleted its files."
    assert not file.exists()
    assert empty == "No words yet. Teach one with /teach (3-10 pictures)."


def test_the_status_line_shows_step_loss_and_eta() -> None:
    from bot.exts.teach import lesson_line

    step = ProgressEvent(kind="step", step=40, steps=300, loss=0.1234, eta_s=52.4)
    queued = ProgressEvent(kind="queued", position=2, eta_s=150.0)
    assert str(lesson_line("<our-mascot>", step)) == (
        "📚 Learning <our-mascot>… step 40/300 · loss 0.1234 · about 52 s left"
    )
    assert str(lesson_line("<our-mascot>", queued)) == (
        "📚 Waiting to learn <our-mascot> (position 2, about 150 s); pictures are drawn first…"
    )


async def test_teach_and_concepts_are_synced_with_their_options(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    sync = await synced_commands(app_config, fake_openai, worker_url, fake_discord)
    by_name = {c["name"]: c for c in sync.json}
    teach_options = [(o["name"], o["type"], o["required"]) for o in by_name["teach"]["options"]]
    assert teach_options == [
        ("name", 3, True), ("image1", 11, True), ("image2", 11, True), ("image3", 11, True),
        *((f"image{n}", 11, False) for n in range(4, 11)), ("like", 3, False),
    ]  # fmt: skip
    words = by_name["concepts"]
    assert words["default_member_permissions"] == 1 << 5  # Manage Server
    assert [o["name"] for o in words["options"]] == ["list", "rename", "delete"]
