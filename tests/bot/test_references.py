"""One person's pictures stay theirs, through Discord: references by id, ordinal, words or button, scoped.

A picture is reachable by its owner and by anyone in the conversation where it was posted; an
upload made in a DM stays in that DM; a picture made where NSFW is allowed stays in such places.
A refused reference gets the same words whether or not the picture exists.
"""

from __future__ import annotations

import io

from PIL import Image

from egaku.config import Config
from tests.bot.test_buttons import callback_of
from tests.bot.test_conversation import live
from tests.fakes.discord import (
    BOT_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    NSFW_CHANNEL_ID,
    OTHER_CHANNEL_ID,
    Captured,
    FakeDiscord,
)
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.stores.preferences import GuildPolicy

NOT_HERE = (
    "Refused: I can't find that picture here. Reply to it, or give its id. Adjust the arguments once, or ask the user."
)
ALICE, BOB, CAROL = 20, 21, 22


def answers_in(fake: FakeDiscord, channel_id: int) -> list[Captured]:
    """The bot's posts in one channel."""
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith(f"/channels/{channel_id}/messages")]


async def say_in(fake: FakeDiscord, channel_id: int, text: str, author_id: int, **kwargs: object) -> Captured:
    """A message to the bot in a channel (or a DM); the bot's answer there."""
    before = len(answers_in(fake, channel_id))
    name = {ALICE: "alice", BOB: "bob", CAROL: "carol"}[author_id]
    await fake.user_message(text, author_id=author_id, author_name=name, channel_id=channel_id, **kwargs)  # type: ignore[arg-type]
    return (await fake.wait_for_requests(lambda r: r in answers_in(fake, channel_id), before + 1))[-1]


def tool_answer(llm: FakeOpenAI, request: int) -> str:
    """What the tool told the model, in the model's `request`-th call."""
    message = llm.requests[request]["messages"][-1]
    assert message["role"] == "tool"
    return str(message["content"])


def edit_of(ref: str) -> Call:
    return Call("edit_image", {"ref": ref, "prompt": "the same lighthouse, in a storm at night", "mode": "subtle"})


async def test_another_user_elsewhere_can_reach_a_picture_by_no_route(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a lighthouse on a cliff", "seed": 7, "reply": "Here!"}))
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> draw a lighthouse", ALICE)
        (drawn,) = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        for ref in (drawn.id, drawn.id.upper(), "the first one", "lighthouse", "last"):
            fake_openai.then(edit_of(ref), Say("Which picture do you mean?"))
            answer = await say_in(fake_discord, OTHER_CHANNEL_ID, f"<@{BOT_ID}> edit image {ref}, subtle", BOB)
            assert answer.json["content"] == "Which picture do you mean?"
            assert tool_answer(fake_openai, len(fake_openai.requests) - 1) == NOT_HERE
        # An id that exists nowhere gets the very same words: a refusal confirms nothing.
        fake_openai.then(edit_of("zzzz"), Say("Which picture do you mean?"))
        await say_in(fake_discord, OTHER_CHANNEL_ID, f"<@{BOT_ID}> edit image zzzz", BOB)
        assert tool_answer(fake_openai, len(fake_openai.requests) - 1) == NOT_HERE
    assert [r.path for r in recorder.received] == ["/v1/images/generations"]  # no edit ever reached the worker


async def test_the_owner_anywhere_and_anyone_in_the_same_channel_still_can(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a lighthouse on a cliff", "seed": 7, "reply": "Here!"}))
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> draw a lighthouse", ALICE)
        (drawn,) = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        fake_openai.then(Call("edit_image", {"ref": drawn.id, "prompt": "a lighthouse at night", "mode": "subtle",
                                             "reply": "Night!"}))  # fmt: skip
        await say_in(fake_discord, OTHER_CHANNEL_ID, f"<@{BOT_ID}> edit image {drawn.id} at night", ALICE)
        fake_openai.then(Call("edit_image", {"ref": drawn.id, "prompt": "a lighthouse at dawn", "mode": "subtle",
                                             "reply": "Dawn!"}))  # fmt: skip
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> edit image {drawn.id} at dawn", CAROL)
        night = (await app.history.mine(f"discord:{OTHER_CHANNEL_ID}", str(ALICE)))[0]
        dawn = (await app.history.mine(f"discord:{CHANNEL_ID}", str(CAROL)))[0]
    assert (night.parent_id, dawn.parent_id) == (drawn.id, drawn.id)
    assert [(r.path, str(r.fields["seed"])) for r in recorder.received] == [
        ("/v1/images/generations", "7"), ("/v1/images/edits", "7"), ("/v1/images/edits", "7"),
    ]  # fmt: skip


async def test_an_upload_in_a_dm_stays_in_that_dm(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(photo, format="PNG")
    attachment = fake_discord.attachment(photo.getvalue(), "me.png", "image/png")
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await say_in(fake_discord, DM_CHANNEL_ID, "here is my photo", ALICE, dm=True, attachments=[attachment])
        (upload,) = await app.history.mine(f"discord:{DM_CHANNEL_ID}", str(ALICE))
        fake_openai.then(edit_of(upload.id), Say("Which picture do you mean?"))
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> edit image {upload.id}", ALICE)
    assert upload.kind == "upload" and upload.guild_id is None
    assert tool_answer(fake_openai, len(fake_openai.requests) - 1) == NOT_HERE
    assert all(r.path != "/v1/images/edits" for r in recorder.received)


async def test_a_picture_from_an_nsfw_channel_is_no_reference_outside_one(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a figure study in charcoal", "reply": "Here."}))
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await app.preferences.set_guild(str(GUILD_ID), GuildPolicy(nsfw=True))
        await say_in(fake_discord, NSFW_CHANNEL_ID, f"<@{BOT_ID}> draw a figure study", ALICE)
        (drawn,) = await app.history.mine(f"discord:{NSFW_CHANNEL_ID}", str(ALICE))
        fake_openai.then(edit_of(drawn.id), Say("Which picture do you mean?"))
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> edit image {drawn.id}", ALICE)
    assert drawn.nsfw is True
    assert tool_answer(fake_openai, len(fake_openai.requests) - 1) == NOT_HERE
    assert [r.path for r in recorder.received] == ["/v1/images/generations"]


async def test_a_button_naming_a_picture_from_elsewhere_shows_nothing(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": "a lighthouse on a cliff", "reply": "Here!"}),
        Say("Hello, Bob!"),
    )
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> draw a lighthouse", ALICE)
        (drawn,) = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        await say_in(fake_discord, OTHER_CHANNEL_ID, f"<@{BOT_ID}> hello", BOB)
        hello = next(int(k) for k, m in fake_discord.messages.items() if m.get("content") == "Hello, Bob!")
        # Buttons forged onto a message of this channel, naming Alice's picture from the other one.
        forged = [{"type": 2, "style": 2, "label": "?", "custom_id": f"egaku:{a}:{drawn.id}"}
                  for a in ("prompt", "candidates", "reroll")]  # fmt: skip
        fake_discord.messages[hello].setdefault("components", []).append({"type": 1, "components": forged})
        presses = [
            await fake_discord.press(f"egaku:{action}:{drawn.id}", hello, user_id=BOB, user_name="bob")
            for action in ("prompt", "candidates", "reroll")
        ]
        answers = [await fake_discord.wait_for_request(callback_of(press)) for press in presses]
    gone = {"type": 4, "data": {"tts": False, "content": "I can't find that image in my history any more.", "flags": 64,
                                "allowed_mentions": {"parse": []}}}  # fmt: skip
    assert [a.json for a in answers] == [gone, gone, gone]
    assert [r.path for r in recorder.received] == ["/v1/images/generations"]
