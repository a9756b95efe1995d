"""Conversational edits end to end: fake Discord, scripted LLM, real tiny worker behind a recorder.

Each turn asserts what the worker received: the parent image, the seed and the prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from egaku.app import App, open_app
from egaku.config import Config
from tests.agent.test_agent import configured
from tests.bot.harness import running_bot
from tests.conftest import FAKE_ENV
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.stores.history import History

KING = "A regal red squirrel king on a mossy tree-stump throne in an autumn forest, tiny golden crown, warm light"
NIGHT = "A regal red squirrel king on a mossy tree-stump throne in an autumn forest at night, moonlight, lanterns"
WATERCOLOUR = "A regal red squirrel king on a mossy throne, loose watercolour painting, soft washes, paper texture"
GOLD = "A regal red squirrel king at night with a shining solid gold crown, moonlight, lanterns"


@contextlib.asynccontextmanager
async def live(config: Config, llm: FakeOpenAI, recorder: RecordingWorker, fake: FakeDiscord) -> AsyncIterator[App]:
    """The app and the bot, as one process would run them."""
    config = configured(config, llm.base_url, recorder.url)
    async with (
        open_app(config, Path("unused.toml"), FAKE_ENV) as app,
        running_bot(
            fake,
            app.agent,
            history=app.history,
            session=app.session,
            preferences=app.preferences,
            worker=app.worker,
            concepts=app.concepts,
        ),
    ):
        yield app


def posts(fake: FakeDiscord) -> list[Captured]:
    """The bot's answers in the channel; status messages (a slow GPU, a loaded machine) are not answers."""
    return [
        r
        for r in fake.requests
        if r.method == "POST"
        and r.path.endswith(f"/channels/{CHANNEL_ID}/messages")
        and "egaku:cancel:" not in str((r.json or {}).get("components", ""))
    ]


async def say(fake: FakeDiscord, text: str, **kwargs: object) -> Captured:
    """Send a message to the bot; return its answer."""
    before = len(posts(fake))
    await fake.user_message(text, **kwargs)  # type: ignore[arg-type]
    return (await fake.wait_for_requests(lambda r: r in posts(fake), before + 1))[-1]


async def linked(history: History, message_id: str | int, timeout: float = 30.0) -> None:
    """Wait until the history links a picture to this message: the bot does it just after Discord answers the post,
    so a test that replies to a picture at once could otherwise reply before it (a person never does)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await history.by_message(str(message_id)):
        assert asyncio.get_running_loop().time() < deadline, f"no picture linked to message {message_id}"
        await asyncio.sleep(0.02)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_four_turns_of_edits_across_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": KING, "seed": 101}),
        Say("The squirrel king!"),
        Call("edit_image", {"ref": "last", "prompt": NIGHT, "mode": "regenerate"}),
        Say("Now at night."),
        Call("edit_image", {"ref": "the first one", "prompt": WATERCOLOUR, "mode": "strong"}),
        Say("As a watercolour."),
        Call("edit_image", {"ref": "reply", "prompt": GOLD, "mode": "subtle"}),
        Say("Gold crown."),
    )
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        first = await say(fake_discord, f"<@{BOT_ID}> リスの王を描いて")
        second = await say(fake_discord, f"<@{BOT_ID}> 夜にして")
        first_png, second_png = first.files[0].data, second.files[0].data
        second_message = int(next(m for m in fake_discord.messages.values() if m["content"] == "Now at night.")["id"])
        mine = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    # Restart: a new process with the same storage.
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        third = await say(fake_discord, f"<@{BOT_ID}> the first one, but as a watercolour")
        fourth = await say(fake_discord, "make the crown gold", mention_bot=False, reply_to=second_message)
        history = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
        audit = await app.history.audit_log("20")

    generate, regenerate, strong, described, subtle = recorder.received
    # 1. generate: the model's English prompt and seed, as sent.
    assert generate.path == "/v1/images/generations"
    assert (generate.fields["prompt"], generate.fields["seed"]) == (KING, 101)
    # 2. "make it night": same seed, size and model as the parent, a whole new prompt.
    assert regenerate.path == "/v1/images/generations"
    assert {k: regenerate.fields[k] for k in ("prompt", "seed", "size", "model", "steps")} == {
        "prompt": NIGHT, "seed": 101, "size": "64x64", "model": "tiny", "steps": 2,
    }  # fmt: skip
    # 3. "the first one, but as a watercolour": img2img from the FIRST image, after the restart.
    assert strong.path == "/v1/images/edits"
    assert strong.files == {"image": sha(first_png)}
    assert (strong.fields["prompt"], strong.fields["seed"], strong.fields["strength"]) == (WATERCOLOUR, "101", "0.7")
    # 4. a reply to the second image: the captioner describes it for the model first, then it is edited.
    assert (described.path, described.files) == ("/v1/images/descriptions", {"image": sha(second_png)})
    assert subtle.files == {"image": sha(second_png)}
    assert (subtle.fields["prompt"], subtle.fields["strength"]) == (GOLD, "0.35")
    # The history links each edit to its parent, and survived the restart.
    assert [(g.kind, g.parent_id) for g in history] == [
        ("generate", None), ("regenerate", mine[0].id), ("strong", mine[0].id), ("subtle", mine[1].id),
    ]  # fmt: skip
    assert third.json["embeds"][0]["description"] == WATERCOLOUR
    # One audit record per job, with who, where, the words, the final prompt and the outcome.
    assert [(a.outcome, a.final_prompt, a.user_words) for a in audit] == [
        ("ok", KING, "リスの王を描いて"), ("ok", NIGHT, "夜にして"),
        ("ok", WATERCOLOUR, "the first one, but as a watercolour"), ("ok", GOLD, "make the crown gold"),
    ]  # fmt: skip
    assert [a.image_ids for a in audit] == [g.id for g in history]
    assert all(a.guild_id == "1000" and a.channel_id == str(CHANNEL_ID) and a.source_id for a in audit)
    assert '"seed": 101' in audit[1].parameters and "sk-" not in str(audit)
    assert fourth.json["content"] == "Gold crown."
    # The model saw the compact history (ids and prompts), never pixels.
    system = fake_openai.requests[4]["messages"][0]["content"]
    assert f"#1 id={mine[0].id} (generate): A regal red squirrel king" in system
    assert f"#2 id={mine[1].id} (regenerate, edit of {mine[0].id})" in system
    replied = fake_openai.requests[6]["messages"][0]["content"]
    assert replied.endswith(
        f"The user replied to the message showing this image (ref 'reply'): id={mine[1].id} (regenerate, edit of "
        f"{mine[0].id}): {NIGHT}; it shows: {described.answer['prompt']}"
    )
    assert "iVBOR" not in str(fake_openai.requests)


async def test_a_reply_that_comes_before_the_picture_is_linked_still_names_the_picture(
    app_config: Config,
    fake_openai: FakeOpenAI,
    recorder: RecordingWorker,
    fake_discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bot links a picture to its message after Discord has answered the post; here the link is slow, and the
    # reply is sent the moment the post reaches Discord. The reply waits for the link, so the model is told which
    # picture it answers.
    fake_openai.then(
        Call("generate_image", {"prompt": KING, "seed": 7}),
        Say("The squirrel king!"),
        Call("edit_image", {"ref": "reply", "prompt": GOLD, "mode": "subtle"}),
        Say("Gold crown."),
    )
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        link = app.history.attach_message

        async def slow_link(image_ids: list[str], message_id: str) -> None:
            await asyncio.sleep(0.5)
            await link(image_ids, message_id)

        monkeypatch.setattr(app.history, "attach_message", slow_link)
        first = await say(fake_discord, f"<@{BOT_ID}> draw the squirrel king")
        king = next(m for m in fake_discord.messages.values() if m["content"] == "The squirrel king!")
        assert not await app.history.by_message(king["id"])  # not linked yet: the reply below comes first
        second = await say(fake_discord, "make the crown gold", mention_bot=False, reply_to=int(king["id"]))
        mine = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    generate, described, subtle = recorder.received
    assert (generate.path, generate.fields["prompt"]) == ("/v1/images/generations", KING)
    assert (described.path, described.files) == ("/v1/images/descriptions", {"image": sha(first.files[0].data)})
    assert (subtle.files, subtle.fields["prompt"]) == ({"image": sha(first.files[0].data)}, GOLD)
    replied = fake_openai.requests[2]["messages"][0]["content"]
    assert replied.endswith(
        f"The user replied to the message showing this image (ref 'reply'): id={mine[0].id} (generate): {KING}; "
        f"it shows: {described.answer['prompt']}"
    )
    assert second.json["content"] == "Gold crown."


async def test_two_users_each_edit_their_own_last_image(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": "a lighthouse in a storm", "seed": 1}), Say("alice 1"),
        Call("generate_image", {"prompt": "a bowl of ramen", "seed": 2}), Say("bob 1"),
        Call("edit_image", {"ref": "last", "prompt": "a lighthouse in a storm at night", "mode": "regenerate"}),
        Say("alice 2"),
        Call("edit_image", {"ref": "last", "prompt": "a bowl of ramen, top view", "mode": "regenerate"}),
        Say("bob 2"),
    )  # fmt: skip
    async with live(app_config, fake_openai, recorder, fake_discord):
        await say(fake_discord, f"<@{BOT_ID}> draw a lighthouse", author_id=20, author_name="alice")
        await say(fake_discord, f"<@{BOT_ID}> draw ramen", author_id=21, author_name="bob")
        await say(fake_discord, f"<@{BOT_ID}> make it night", author_id=20, author_name="alice")
        await say(fake_discord, f"<@{BOT_ID}> from the top", author_id=21, author_name="bob")
    seeds = [r.fields["seed"] for r in recorder.received]
    assert seeds == [1, 2, 1, 2]  # each edit kept its own user's parent seed
    assert [r.fields["user"] for r in recorder.received] == ["20", "21", "20", "21"]


async def test_upload_then_edit_it(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (96, 64), "teal").save(photo, format="JPEG", exif=b"Exif\x00\x00secret-gps")
    attachment = fake_discord.attachment(photo.getvalue(), "cat.jpg", "image/jpeg")
    fake_openai.then(
        Call("edit_image", {"ref": "last", "prompt": "a teal cat, watercolour painting", "mode": "strong"}),
        Say("Watercolour!"),
    )
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        answer = await say(fake_discord, f"<@{BOT_ID}> make this a watercolour", attachments=[attachment])
        (upload, edit) = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    assert (upload.kind, upload.width, upload.height) == ("upload", 96, 64)
    assert (edit.kind, edit.parent_id) == ("strong", upload.id)
    stored = Image.open(io.BytesIO(app.history.png(upload)))
    assert stored.format == "PNG" and "exif" not in stored.info  # re-encoded from pixels
    described, received = recorder.received
    # The captioner described the upload before the model wrote the edit, and the model saw its words.
    assert (described.path, described.files) == ("/v1/images/descriptions", {"image": sha(app.history.png(upload))})
    # An upload is drawn at the model's own size (64x64's pixels, the upload's shape): no size is sent.
    assert received.path == "/v1/images/edits" and "size" not in received.fields
    assert (edit.width, edit.height) == (72, 48)
    assert f"(attached image: id={upload.id})" in fake_openai.requests[0]["messages"][-1]["content"]
    caption = described.answer["prompt"]
    assert fake_openai.requests[0]["messages"][0]["content"].endswith(
        f"#1 id={upload.id} (upload): (uploaded image cat.jpg); it shows: {caption}"
    )
    assert answer.json["content"] == "Watercolour!"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("bomb", "I couldn't use that image: the image is too large"),
        ("truncated", "I couldn't use that image: couldn't read that image: the file is damaged or truncated."),
        ("not-an-image", "I couldn't use that image: couldn't read that image (PNG, JPEG, WebP or GIF)."),
    ],
)
async def test_bad_uploads_get_a_clear_answer(
    app_config: Config,
    fake_openai: FakeOpenAI,
    recorder: RecordingWorker,
    fake_discord: FakeDiscord,
    make: str,
    expected: str,
) -> None:
    if make == "bomb":
        buffer = io.BytesIO()
        Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # tiny file, 400 MP
        data = buffer.getvalue()
    elif make == "truncated":
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
        data = buffer.getvalue()[:80]
    else:
        data = b"%PDF-1.7 definitely not an image"
    attachment = fake_discord.attachment(data, "x.png")
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        answer = await say(fake_discord, f"<@{BOT_ID}> make this a watercolour", attachments=[attachment])
        assert await app.history.mine(f"discord:{CHANNEL_ID}", "20") == []
    assert answer.json["content"].startswith(expected)
    assert fake_openai.requests == [] and recorder.received == []


async def test_region_edit_by_words_reaches_the_inpaint_path(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    queen = "A black-haired queen on a mossy tree-stump throne in an autumn forest, warm light"
    fake_openai.then(
        Call("generate_image", {"prompt": KING, "seed": 5}),
        Say("Here."),
        Call("edit_image", {"ref": "last", "prompt": queen, "mode": "region", "target": "the squirrel king"}),
        Say("Now a queen."),
    )
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await say(fake_discord, f"<@{BOT_ID}> draw a squirrel king")
        await say(fake_discord, f"<@{BOT_ID}> change the squirrel king into a black-haired queen")
        _, region = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    edit = recorder.received[1]
    assert edit.path == "/v1/images/edits"
    assert (edit.fields["mask_prompt"], edit.fields["prompt"], edit.fields["seed"]) == ("the squirrel king", queen, "5")
    assert region.kind == "region"
    assert edit.answer["data"][0]["parameters"]["mode"] == "inpaint"  # the worker masked and inpainted


async def test_reset_forgets_the_talk_but_not_the_images(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": KING, "seed": 8}),
        Say("Here."),
        Call("edit_image", {"ref": "last", "prompt": NIGHT, "mode": "regenerate"}),
        Say("Night."),
    )
    async with live(app_config, fake_openai, recorder, fake_discord):
        await say(fake_discord, f"<@{BOT_ID}> draw a squirrel king")
        interaction = await fake_discord.slash_command("reset", [])
        callback = await fake_discord.wait_for_request(lambda r: r.path.endswith(f"/{interaction['token']}/callback"))
        await say(fake_discord, f"<@{BOT_ID}> make it night")
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] == 64  # ephemeral
    after_reset = [m for m in fake_openai.requests[2]["messages"] if m["role"] != "system"]
    assert after_reset == [{"role": "user", "content": "[alice] make it night"}]  # the talk is forgotten
    assert recorder.received[1].fields["seed"] == 8  # but "last" still finds the image


async def test_an_unknown_reference_is_told_to_the_model_not_crashed(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("edit_image", {"ref": "the dragon one", "prompt": "a dragon at night", "mode": "regenerate"}),
        Say("Which picture do you mean?"),
    )
    async with live(app_config, fake_openai, recorder, fake_discord):
        answer = await say(fake_discord, f"<@{BOT_ID}> make the dragon one darker")
    assert answer.json["content"] == "Which picture do you mean?"
    tool_message = fake_openai.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"].startswith(
        "Refused: I can't find that picture here."
    )
    assert recorder.received == []
