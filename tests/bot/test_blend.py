"""/blend end to end: three pictures to the tiny Qwen-Image-Edit Plus preset, in order; the buttons on the blend
(a reroll is the same pictures with a new seed; vary and upscale edit the blend itself); the refusals."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from egaku.config import Config
from tests.bot.test_buttons import callback_of, custom_ids, followup_of
from tests.bot.test_conversation import live, sha
from tests.bot.test_reference_edits import edits, photo, plus_engine, plus_worker, with_plus
from tests.bot.test_user_install import in_channels
from tests.fakes.discord import CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.discord_places import GROUP_DM, Place
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker
from tools.pictures import Parent
from tools.service.references import NO_BLEND_TEXT
from worker.engine import Engine

__all__ = ["plus_engine", "plus_worker"]  # the fixtures this module uses

THREE_BLENDED = (
    "One new picture that blends picture 1, picture 2 and picture 3 into a single coherent scene: their subjects, "
    "shapes, colours and styles merged naturally."
)


async def blend(
    fake: FakeDiscord, pictures: list[bytes], place: Place | None = None, locale: str | None = None, **more: Any
) -> dict[str, Any]:
    """/blend with these pictures (image1, image2...) and options, where and in the language given; the interaction."""
    attachments = [fake.attachment(data, f"p{n}.png") for n, data in enumerate(pictures, start=1)]
    options: list[dict[str, Any]] = [
        {"name": f"image{n}", "type": 11, "value": a["id"]} for n, a in enumerate(attachments, start=1)
    ]
    options += [{"name": key, "type": 3, "value": value} for key, value in more.items()]
    return await fake.slash_command("blend", options, attachments=attachments, place=place, locale=locale)


def decoded(references: list[str]) -> list[str]:
    """The sha256 of each base64 reference, in order."""
    return [hashlib.sha256(base64.b64decode(r)).hexdigest() for r in references]


def showing(fake: FakeDiscord, image_id: str) -> int:
    """The id of the bot's message whose buttons act on this picture."""
    return next(int(k) for k, m in fake.messages.items() if f"egaku:reroll:{image_id}" in str(m.get("components")))


async def press(fake: FakeDiscord, action: str, image_id: str, message_id: int) -> Captured:
    """Press a button under a result; the followup with the new picture."""
    pressed = await fake.press(f"egaku:{action}:{image_id}", message_id)
    return await fake.wait_for_request(followup_of(pressed), timeout=600)


async def test_blend_three_pictures_then_reroll_vary_and_upscale_the_blend(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    pictures = [photo("teal"), photo("khaki", (64, 48)), photo("crimson", (48, 64))]
    async with live(with_plus(app_config, plus_engine), fake_openai, plus_worker, fake_discord) as app:
        interaction = await blend(fake_discord, pictures, aspect="3:2")
        posted = await fake_discord.wait_for_request(followup_of(interaction), timeout=600)
        *uploads, blended = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
        message = showing(fake_discord, blended.id)
        pngs = [app.history.png(u) for u in uploads]
        rerolled = await press(fake_discord, "reroll", blended.id, message)
        varied = await press(fake_discord, "subtle", blended.id, message)
        upscaled = await press(fake_discord, "upscale", blended.id, message)
        *_, again, vary, bigger = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    assert (await fake_discord.wait_for_request(callback_of(interaction))).json == {"type": 5}  # deferred first
    # The three pictures became uploads, in order, and reached the reference model in that order.
    assert [(u.kind, u.width, u.height) for u in uploads] == [
        ("upload", 64, 64),
        ("upload", 64, 48),
        ("upload", 48, 64),
    ]
    drawn, redrawn = [r for r in plus_worker.received if r.path == "/v1/images/generations"]
    assert decoded(drawn.fields["references"]) == [sha(p) for p in pngs]
    assert {k: drawn.fields[k] for k in ("prompt", "model", "aspect")} == {
        "prompt": THREE_BLENDED, "model": "plus", "aspect": "3:2",
    }  # fmt: skip
    used = drawn.answer["data"][0]["parameters"]
    assert (used["mode"], used["references"], used["model"]) == ("instruct", 3, "plus")
    assert (blended.kind, blended.parents) == ("blend", tuple(Parent(u.id, "reference") for u in uploads))
    assert blended.width > blended.height  # the 3:2 asked for
    assert custom_ids(posted)[0] == f"egaku:reroll:{blended.id}"
    embed = posted.json["embeds"][0]
    assert (embed["description"], embed["fields"][0]["value"]) == (THREE_BLENDED, "/blend of 3 pictures")
    # Reroll: the same pictures, in order, the same size, a new seed; a blend of the same parents.
    assert decoded(redrawn.fields["references"]) == [sha(p) for p in pngs]
    assert (redrawn.fields["prompt"], redrawn.fields["model"]) == (THREE_BLENDED, "plus")
    assert redrawn.fields["size"] == f"{blended.width}x{blended.height}" and "aspect" not in redrawn.fields
    assert redrawn.fields["seed"] != blended.seed == drawn.answer["data"][0]["seed"]
    assert (again.kind, again.parents) == ("blend", blended.parents)
    # Vary and upscale change the blend itself, with the model that drew it.
    subtle, upscale = edits(plus_worker)
    assert subtle.parts == [("image", sha(app.history.png(blended)))] == upscale.parts
    assert (subtle.fields["model"], subtle.fields["strength"], subtle.fields["seed"]) == (
        "plus",
        "0.35",
        str(blended.seed),
    )
    assert upscale.fields["size"] == f"{blended.width * 2}x{blended.height * 2}"
    assert [(g.kind, g.parents) for g in (vary, bigger)] == [
        ("subtle", (Parent(blended.id, "edited"),)), ("strong", (Parent(blended.id, "edited"),)),
    ]  # fmt: skip
    assert all(post.files for post in (rerolled, varied, upscaled))


async def test_blend_is_refused_politely_without_a_reference_model_or_with_a_file_that_is_no_picture(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        interaction = await blend(fake_discord, [photo("teal"), photo("khaki")], prompt="a cat in a hat")
        refused = await fake_discord.wait_for_request(followup_of(interaction))
        text = fake_discord.attachment(b"hello", "notes.txt", "text/plain")
        options = [{"name": "image1", "type": 11, "value": text["id"]}, {"name": "image2", "type": 11,
                                                                           "value": text["id"]}]  # fmt: skip
        odd = await fake_discord.slash_command("blend", options, attachments=[text])
        answer = await fake_discord.wait_for_request(callback_of(odd))
        kept = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    assert refused.json["content"] == str(NO_BLEND_TEXT)
    assert [g.kind for g in kept] == ["upload", "upload"]  # kept as uploads; nothing drawn
    assert recorder.received == []
    assert answer.json["data"]["content"] == "That isn't a picture I can read. Please attach a PNG, JPEG, WebP or GIF."
    assert answer.json["data"]["flags"] == 64


async def test_blend_in_a_group_dm_of_a_users_install_keeps_the_pictures_with_the_users_conversation(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    pictures = [photo("teal"), photo("khaki")]
    async with live(with_plus(app_config, plus_engine), fake_openai, plus_worker, fake_discord) as app:
        interaction = await blend(fake_discord, pictures, place=GROUP_DM, locale="ja")
        posted = await fake_discord.wait_for_request(followup_of(interaction), timeout=600)
        *uploads, blended = await app.history.mine("discord:user:20", "20")
    # The uploads are the user's own there (a group DM's upload is reachable only in its conversation).
    assert [g.kind for g in uploads] == ["upload", "upload"] and blended.kind == "blend"
    assert len(posted.files) == 1 and posted.json["embeds"][0]["fields"][0]["value"] == "/ブレンド（2枚の絵）"
    assert in_channels(fake_discord) == [] and fake_discord.refused == []
