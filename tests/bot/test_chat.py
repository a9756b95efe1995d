"""The real discord.py client against the local fake Discord: chat, replies, DMs."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image

from bot.exts.chat import EMPTY_TEXT, NO_CONTENT_TEXT
from bot.render import compose
from egaku.app import App, open_app
from egaku.config import Config
from egaku.errors import WorkerUnavailable
from egaku.i18n import ENGLISH_VOICE
from tests.agent.test_agent import PROMPT, configured
from tests.bot.harness import running_bot
from tests.conftest import FAKE_ENV
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say


@contextlib.asynccontextmanager
async def app_for(config: Config, llm: FakeOpenAI, worker_url: str) -> AsyncIterator[App]:
    async with open_app(configured(config, llm.base_url, worker_url), Path("unused.toml"), FAKE_ENV) as app:
        yield app


def channel_post(captured: Captured) -> bool:
    return captured.method == "POST" and captured.path == f"/api/v10/channels/{CHANNEL_ID}/messages"


async def test_mention_gets_image_reply_with_both_prompts(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 77}), Say("リスの王様です！"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        sent = await fake_discord.user_message(f"<@{BOT_ID}> リスの王を描いて")
        post = await fake_discord.wait_for_request(channel_post)
    assert any(r.path == f"/api/v10/channels/{CHANNEL_ID}/typing" for r in fake_discord.requests)
    body = post.json
    assert body["content"] == "リスの王様です！"
    assert body["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert body["message_reference"]["message_id"] == int(sent["id"])
    (embed,) = body["embeds"]
    assert embed["description"] == PROMPT
    # Written in Japanese: the labels around the prompt are Japanese too (the prompt stays as the model wrote it).
    assert embed["fields"][0] == {"name": "あなたの言葉", "value": "リスの王を描いて", "inline": False}
    assert embed["footer"]["text"] == "シード 77 · 64×64 · 2ステップ · tiny"
    assert embed["image"]["url"] == "attachment://egaku_77_0.png"
    (upload,) = post.files
    assert upload.filename == "egaku_77_0.png"
    assert Image.open(io.BytesIO(upload.data)).size == (64, 64)
    assert body["attachments"] == [{"id": 0, "filename": "egaku_77_0.png"}]
    assert fake_openai.requests[0]["messages"][-1]["content"] == "[alice] リスの王を描いて"


async def test_plain_chat_gets_text_only(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("こんにちは！何を描きましょうか？"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> こんにちは")
        post = await fake_discord.wait_for_request(channel_post)
    assert post.json["content"] == "こんにちは！何を描きましょうか？"
    assert post.files == [] and post.json.get("embeds", []) == []


async def test_messages_not_for_the_bot_are_ignored(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("answer to the second"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message("just chatting with friends", mention_bot=False)
        await fake_discord.user_message(f"<@{BOT_ID}> second")
        await fake_discord.wait_for_request(channel_post)
    assert len(fake_openai.requests) == 1
    assert fake_openai.requests[0]["messages"][-1]["content"] == "[alice] second"


async def test_reply_to_the_bot_and_dm_are_addressed(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("first answer"), Say("reply answer"), Say("dm answer"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> hello")
        first = await fake_discord.wait_for_request(channel_post)
        bot_message_id = int(next(m for m in fake_discord.messages.values() if m["content"] == "first answer")["id"])
        await fake_discord.user_message("and this?", mention_bot=False, reply_to=bot_message_id)
        await fake_discord.wait_for_request(lambda r: channel_post(r) and r is not first)
        await fake_discord.user_message("in private", mention_bot=False, dm=True, channel_id=3000)
        dm = await fake_discord.wait_for_request(lambda r: r.path == "/api/v10/channels/3000/messages")
    assert fake_openai.requests[1]["messages"][-1]["content"] == "[alice] (replying to your message) and this?"
    assert dm.json["content"] == "dm answer"
    # The DM is its own conversation: no channel history leaks into it.
    assert [m["content"] for m in fake_openai.requests[2]["messages"] if m["role"] != "system"] == [
        "[alice] in private"
    ]


async def test_mentions_in_llm_output_ping_no_one_and_long_text_is_capped(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    long = "@everyone <@&123> " + " ".join(["word"] * 900)  # ~4500 characters
    fake_openai.then(Say(long))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> say a lot")
        post = await fake_discord.wait_for_request(channel_post)
    content = post.json["content"]
    assert long.startswith(content.removesuffix("…")) and content.endswith("…")  # capped at a word boundary
    assert 1400 < len(content) <= 1500
    assert post.json["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert fake_discord.refused == []


def test_long_text_is_split_within_discords_limit() -> None:
    long = "@everyone <@&123> " + " ".join(["word"] * 900)
    parts = compose(long, [], None, ENGLISH_VOICE)
    assert [len(p.content) <= 2000 for p in parts] == [True, True, True]
    assert " ".join(p.content for p in parts) == long


async def test_empty_mention_gets_a_hint(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}>")
        post = await fake_discord.wait_for_request(channel_post)
    assert post.json["content"] == str(EMPTY_TEXT)
    assert fake_openai.requests == []


async def test_missing_message_content_intent_is_explained(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with (
        app_for(app_config, fake_openai, worker_url) as app,
        running_bot(fake_discord, app.agent, message_content=False),
    ):
        await fake_discord.user_message("", mention_bot=False, reply_to=None, dm=True, channel_id=3001)
        post = await fake_discord.wait_for_request(lambda r: r.path == "/api/v10/channels/3001/messages")
    assert post.json["content"] == str(NO_CONTENT_TEXT)
    identify = next(f for f in fake_discord.gateway_frames if f["op"] == 2)
    assert not identify["d"]["intents"] & (1 << 15)  # MESSAGE_CONTENT was not requested


async def test_worker_failure_gets_a_fixed_message_with_an_error_id(
    app_config: Config, fake_openai: FakeOpenAI, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow", "reply": "Here is your fox!"}))
    async with app_for(app_config, fake_openai, "http://127.0.0.1:9") as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        post = await fake_discord.wait_for_request(channel_post)
    # One model call; the reply it wrote for a picture is not shown, the bot's fixed text is.
    assert len(fake_openai.requests) == 1
    content = post.json["content"]
    assert re.fullmatch(re.escape(WorkerUnavailable.user_text) + r" \(error id `[0-9a-f]{8}`\)", content)
