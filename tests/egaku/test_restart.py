"""Nothing lost: the real `egaku bot` and `egaku worker` processes SIGKILLed mid-job and started again.

The bot talks to the fake Discord and the fake LLM; the worker draws with the tiny preset. A
killed process runs no cleanup, as in a crash, an out-of-memory kill or a deploy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.buttons.upscale import FALLBACK_2X
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.egaku_processes import Egaku, Settings, job_states
from tests.fakes.openai import Call, FakeOpenAI, Say, Script

FOX = "a red fox in fresh snow, watercolour"


def draw_each_message(body: dict[str, Any]) -> Script:
    """One picture for each message, with its reply in the tool call (one model call a turn)."""
    if body["messages"][-1]["role"] == "tool":
        return Say("Here it is!")
    said = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if "hello" in str(said):
        return Say("Hello again!")
    return Call("generate_image", {"prompt": FOX, "reply": "Here it is!"})


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(responder=draw_each_message)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def egaku(
    tmp_path: Path, worker_cache: Path, fake_discord: FakeDiscord, llm: FakeOpenAI, request: pytest.FixtureRequest
) -> AsyncIterator[Egaku]:
    settings: Settings = getattr(request, "param", Settings())
    processes = Egaku(tmp_path, fake_discord.api_base, fake_discord.gateway_url, llm.base_url, worker_cache, settings)
    try:
        yield processes
    finally:
        await processes.stop()


def pictures(fake: FakeDiscord) -> list[Captured]:
    """Every post that carries a picture (a channel reply, a followup or an edit)."""
    return [r for r in fake.requests if r.files and r.method in ("POST", "PATCH")]


async def until(check: Callable[[], Any], what: str, timeout_s: float = 240.0) -> None:
    """Poll a condition (a coroutine function or a plain one) until it holds; a hang guard, not a timing."""
    for _ in range(int(timeout_s / 0.05)):
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("egaku", [Settings(steps=40)], indirect=True)
async def test_the_bot_killed_mid_render_posts_the_picture_after_its_restart_exactly_once(
    egaku: Egaku, fake_discord: FakeDiscord, llm: FakeOpenAI
) -> None:
    await egaku.start_worker()
    await egaku.start_bot()
    await fake_discord.wait_ready(timeout=120)
    asked = await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")

    async def drawing() -> bool:
        return "running" in (await job_states(egaku.journal)).values()

    await until(drawing, "the worker to start drawing the picture")
    await egaku.kill("bot")
    assert pictures(fake_discord) == []
    await egaku.start_bot()  # the same config, database and worker
    await until(lambda: pictures(fake_discord), "the picture after the restart")
    await fake_discord.user_message(f"<@{BOT_ID}> hello", author_id=21, author_name="bob")
    await until(lambda: any((r.json or {}).get("content") == "Hello again!" for r in fake_discord.requests), "a chat")

    async def settled() -> bool:
        return set((await job_states(egaku.journal)).values()) == {"posted"}

    await until(settled, "the journal to settle")
    (post,) = pictures(fake_discord)
    assert post.path == f"/api/v10/channels/{CHANNEL_ID}/messages"
    assert int(post.json["message_reference"]["message_id"]) == int(asked["id"])  # a reply to the original message
    assert post.json["content"] == "Here it is!" and post.json["embeds"][0]["description"] == FOX
    labels = [b.get("label", "") for row in post.json["components"] for b in row["components"]]
    assert "Reroll" in labels and str(FALLBACK_2X) in labels  # the tiny worker has no upscaler
    assert await egaku.completed() == 1  # the worker drew it once: the restarted bot re-attached to it
    assert llm.rejected == []  # the channel's conversation stayed valid for a strict server


@pytest.mark.timeout(600)
@pytest.mark.parametrize("egaku", [Settings(steps=12, max_batch=1)], indirect=True)
async def test_the_worker_killed_with_jobs_queued_finishes_every_one_once_after_its_restart(
    egaku: Egaku, fake_discord: FakeDiscord
) -> None:
    await egaku.start_worker()
    await egaku.start_bot()
    await fake_discord.wait_ready(timeout=120)
    people = range(31, 36)
    asked = [
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox", author_id=user, author_name=f"u{user}")
        for user in people
    ]

    async def one_done_and_some_queued() -> bool:
        states = list((await job_states(egaku.journal)).values())
        return len(states) == len(people) and states.count("sent") >= 2 and bool(pictures(fake_discord))

    await until(one_done_and_some_queued, "a picture posted while others wait in the worker's queue")
    await egaku.kill("worker")
    states = await job_states(egaku.journal)
    unfinished = [job for job, state in states.items() if state in ("queued", "sent", "running")]
    assert unfinished and len(unfinished) < len(people)
    await egaku.start_worker()
    await until(lambda: len(pictures(fake_discord)) >= len(people), "every picture after the worker's restart")

    async def settled() -> bool:
        return set((await job_states(egaku.journal)).values()) == {"posted"}

    await until(settled, "the journal to settle")
    replied = sorted(int(p.json["message_reference"]["message_id"]) for p in pictures(fake_discord))
    assert replied == sorted(int(m["id"]) for m in asked)  # every request answered, exactly once
    # The restarted worker drew exactly the jobs that were not finished: none that was, none twice.
    assert await egaku.completed() == len(unfinished)
