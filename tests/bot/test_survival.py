"""A bot that stays up, and a user who always gets an answer, on a server that speaks Discord imperfectly.

Also: the fake Discord is as strict as Discord (the 3 s acknowledgement, message limits, empty
messages), so that a bug of each kind fails a test.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

import bot.policy
from bot.exts.chat import EMPTY_TEXT
from egaku.config import Config
from egaku.errors import PostFailed
from tests.agent.test_agent import PROMPT
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for, channel_post
from tests.bot.test_imagine import callback_of, followup_of
from tests.fakes.broken_worker import BrokenWorker
from tests.fakes.discord import ACK_DEADLINE_S, BOT_ID, CHANNEL_ID, FakeDiscord, Fault, user_payload
from tests.fakes.openai import Call, FakeOpenAI, Say


async def test_a_failed_command_sync_leaves_the_bot_serving_mentions(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_discord.faults.append(Fault("PUT", "/applications/", 400, {"message": "Invalid Form Body", "code": 50035}))
    fake_openai.then(Say("Still here!"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent, sync=True):
        await fake_discord.user_message(f"<@{BOT_ID}> hello")
        post = await fake_discord.wait_for_request(channel_post)
    assert any(r.method == "PUT" and r.path.endswith("/commands") for r in fake_discord.requests)
    assert post.json["content"] == "Still here!"


async def test_a_refused_final_post_is_explained_and_the_image_is_kept(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_discord.faults.append(
        Fault("POST", f"/channels/{CHANNEL_ID}/messages", 400, {"message": "Invalid Form Body", "code": 50035})
    )
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 5}), Say("Here it is!"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a squirrel king")
        refused, explained = await fake_discord.wait_for_requests(channel_post, 2)
        kept = await app.history.mine("discord:2000", "20")
    assert refused.files and refused.json["embeds"]  # the picture was tried first
    assert explained.json["content"].startswith(PostFailed.user_text + " (error id `")
    assert explained.files == [] and "embeds" not in explained.json
    assert [(g.prompt, g.seed) for g in kept] == [(PROMPT, 5)]  # still in the history


async def test_a_gateway_payload_discord_py_cannot_parse_is_ridden_out(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("Back again."))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent) as egaku:
        egaku.crash_backoff_s = 0.01
        # A MESSAGE_CREATE without the fields discord.py reads: its parser raises KeyError in the gateway loop.
        await fake_discord.dispatch("MESSAGE_CREATE", {"channel_id": str(CHANNEL_ID), "author": user_payload(3, "x")})
        for _ in range(500):
            if fake_discord.identify_count >= 2:
                break
            await asyncio.sleep(0.01)
        await fake_discord.wait_ready()
        await fake_discord.user_message(f"<@{BOT_ID}> hello?")
        post = await fake_discord.wait_for_request(channel_post)
    assert fake_discord.identify_count == 2  # it connected again
    assert post.json["content"] == "Back again."


async def test_a_worker_dying_mid_render_is_told_and_the_channel_keeps_answering(
    app_config: Config, fake_openai: FakeOpenAI, fake_discord: FakeDiscord
) -> None:
    dying = BrokenWorker("cut")
    await dying.start()
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "reply": "Here it is!"}), Say("I'm fine."))
    try:
        async with app_for(app_config, fake_openai, dying.url) as app, running_bot(fake_discord, app.agent):
            await fake_discord.user_message(f"<@{BOT_ID}> draw a squirrel king")
            await fake_discord.wait_for_request(channel_post)
            await fake_discord.user_message(f"<@{BOT_ID}> are you ok?")
            failed, later = await fake_discord.wait_for_requests(channel_post, 2)
    finally:
        await dying.stop()
    assert failed.json["content"].startswith(  # one model call; the bot's fixed text, not the model's
        "The image service stopped while drawing your picture. Please try again. (error id `"
    )
    assert later.json["content"] == "I'm fine."
    assert fake_openai.rejected == []


@pytest.mark.parametrize("text", ["\u200b\u200b\u200b", "\u200d \ufeff\u2060", "   \n  "])
async def test_a_message_of_only_zero_width_characters_gets_the_hint(
    text: str, app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> {text}")
        post = await fake_discord.wait_for_request(channel_post)
    assert post.json["content"] == str(EMPTY_TEXT)
    assert fake_openai.requests == []


async def test_a_very_long_message_is_answered_politely_without_the_llm(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> " + "draw " * 6000)
        post = await fake_discord.wait_for_request(channel_post)
    assert post.json["content"] == "That message is too long for me (29999 characters). Please keep it under 4000."
    assert fake_openai.requests == []


async def test_zero_width_characters_inside_words_are_dropped(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("ok"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> dr\u200baw  a\u00a0fox")
        await fake_discord.wait_for_request(channel_post)
    assert fake_openai.requests[0]["messages"][-1]["content"] == "[alice] draw a fox"


# -- the fake is as strict as Discord ----------------------------------------------------------


async def test_a_planted_late_defer_is_refused_by_the_fake(
    app_config: Config,
    fake_openai: FakeOpenAI,
    worker_url: str,
    fake_discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug that defers /imagine 3.5 s late: the fake answers 10062 and no picture is ever drawn."""
    offset = 0.0
    fake_discord.clock = lambda: time.monotonic() + offset
    real_policy_for = bot.policy.policy_for

    async def slow_policy_for(*args: Any) -> Any:
        nonlocal offset
        offset += ACK_DEADLINE_S + 0.5  # 3.5 s pass (on the fake's clock) before the defer
        return await real_policy_for(*args)

    monkeypatch.setattr(bot.policy, "policy_for", slow_policy_for)  # read by command_refusal, before the defer
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command("imagine", [{"name": "prompt", "type": 3, "value": "a fox"}])
        await fake_discord.wait_for_requests(callback_of(interaction), 2)  # the defer, then the error reply
    callback = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    assert fake_discord.refused == [(callback, 10062), (callback, 10062)]
    assert not [r for r in fake_discord.requests if followup_of(interaction)(r)]  # type: ignore[operator]
    assert fake_openai.requests == []


async def test_an_on_time_defer_is_accepted(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command(
            "imagine", [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}]
        )
        await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    assert fake_discord.refused == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"content": "x" * 2001}, 50035),
        ({"embeds": [{"description": "d" * 4097}]}, 50035),
        ({"embeds": [{"title": "t" * 200, "description": "d" * 4000}, {"description": "d" * 1900}]}, 50035),
        ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, 50035),
        ({"content": ""}, 50006),
        ({}, 50006),
    ],
    ids=["content", "description", "embed-total", "field-value", "empty-content", "nothing"],
)
async def test_the_fake_refuses_messages_over_discords_limits(
    body: dict[str, Any], code: int, fake_discord: FakeDiscord
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake_discord.api_base}/channels/{CHANNEL_ID}/messages", json=body) as resp,
    ):
        answer = await resp.json(content_type=None)
    assert (resp.status, answer["code"]) == (400, code)


async def test_the_bot_never_sends_what_discord_would_refuse(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    """A 5,000-character answer is split within the limits: nothing is refused."""
    fake_openai.then(Say("word " * 1000))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> talk a lot")
        post = await fake_discord.wait_for_request(channel_post)
    assert fake_discord.refused == []
    assert 0 < len(post.json["content"]) <= 2000
