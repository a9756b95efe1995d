"""Safety: the blocklist applies to the FINAL English prompt, except in channels marked NSFW."""

from __future__ import annotations

from pathlib import Path

from egaku.config import Config, SafetySettings
from tests.bot.test_conversation import live, say
from tests.bot.test_imagine import followup_of
from tests.conftest import serve, strict_safety_checker, tiny_worker_settings
from tests.fakes.discord import BOT_ID, NSFW_CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from worker.engine import Engine
from worker.http import WorkerServer

BLOCKED = "a nude figure study in charcoal"  # the model's English rewrite of a request in any language


async def test_blocked_unless_the_server_allows_nsfw_in_an_nsfw_channel(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": BLOCKED}), Say("Sorry, not in this server."),
        Call("generate_image", {"prompt": BLOCKED}), Say("Sorry, I can't draw that here."),
        Call("generate_image", {"prompt": BLOCKED}), Say("Here it is."),
    )  # fmt: skip
    nsfw_post = lambda r: r.method == "POST" and r.path.endswith(f"/{NSFW_CHANNEL_ID}/messages")  # noqa: E731
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        # 1. An NSFW-marked channel, but the server has not allowed NSFW: blocked.
        await fake_discord.user_message(f"<@{BOT_ID}> 裸婦デッサンを描いて", channel_id=NSFW_CHANNEL_ID)
        not_allowed = await fake_discord.wait_for_request(nsfw_post)
        # An administrator allows NSFW (in NSFW-marked channels only).
        admin = await fake_discord.slash_command("settings", [{"name": "server", "type": 1, "options": [
            {"name": "nsfw", "type": 5, "value": True}]}])  # fmt: skip
        await fake_discord.wait_for_request(lambda r: r.path.endswith(f"/{admin['token']}/callback"))
        # 2. A normal channel: still blocked.
        await fake_discord.user_message(f"<@{BOT_ID}> 裸婦デッサンを描いて")
        refused = await fake_discord.wait_for_request(
            lambda r: r.method == "POST" and r.path.endswith("/2000/messages")
        )
        # 3. The NSFW-marked channel: allowed now.
        before = len([r for r in fake_discord.requests if nsfw_post(r)])
        await fake_discord.user_message(f"<@{BOT_ID}> 裸婦デッサンを描いて", channel_id=NSFW_CHANNEL_ID)
        allowed = (await fake_discord.wait_for_requests(nsfw_post, before + 1))[-1]
        audit = await app.history.audit_log("20")
    assert not_allowed.files == [] and refused.files == []
    assert refused.json["content"] == "Sorry, I can't draw that here."
    assert "isn't allowed in this channel" in fake_openai.requests[1]["messages"][-1]["content"]
    assert len(allowed.files) == 1
    assert [r.fields["prompt"] for r in recorder.received] == [BLOCKED]  # only the allowed case reached the GPU
    assert [(a.outcome, a.verdict) for a in audit] == [
        ("Blocked", "blocked"), ("Blocked", "blocked"), ("ok", "nsfw-channel"),
    ]  # fmt: skip


async def test_raw_imagine_is_checked_too(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        interaction = await fake_discord.slash_command(
            "imagine",
            [{"name": "prompt", "type": 3, "value": "NSFW poster"}, {"name": "raw", "type": 5, "value": True}],
        )
        answer = await fake_discord.wait_for_request(followup_of(interaction))
    assert answer.json["content"] == "That isn't allowed in this channel."
    assert recorder.received == []


async def test_the_workers_safety_checker_blocks_outside_nsfw_channels(
    app_config: Config, fake_openai: FakeOpenAI, fake_discord: FakeDiscord, worker_cache: Path
) -> None:
    settings = tiny_worker_settings(worker_cache, safety_checker=strict_safety_checker(worker_cache), warmup=False)
    server = WorkerServer(Engine(settings), settings, token=None)
    runner, url = await serve(server.app())
    strict = RecordingWorker(url)
    await strict.start()
    config = app_config.model_copy(update={"safety": SafetySettings(worker_check=True)})
    fake_openai.then(Call("generate_image", {"prompt": "a quiet lake at dawn"}), Say("Sorry, that one was blocked."))
    try:
        async with live(config, fake_openai, strict, fake_discord):
            answer = await say(fake_discord, f"<@{BOT_ID}> draw a lake")
    finally:
        await strict.stop()
        await runner.cleanup()
    assert strict.received[0].fields["safety_check"] is True
    assert answer.json["content"] == "Sorry, that one was blocked." and answer.files == []
    assert "the safety checker blocked this picture" in fake_openai.requests[1]["messages"][-1]["content"]
