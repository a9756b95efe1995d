"""Safety: the blocklist applies to the FINAL English prompt, except in channels marked NSFW."""

from __future__ import annotations

from egaku.config import Config
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.bot.test_imagine import followup_of
from tests.fakes.discord import BOT_ID, NSFW_CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker

BLOCKED = "a nude figure study in charcoal"  # the model's English rewrite of a request in any language


async def test_blocked_outside_nsfw_channels_allowed_inside(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": BLOCKED}), Say("Sorry, I can't draw that here."),
        Call("generate_image", {"prompt": BLOCKED}), Say("Here it is."),
    )  # fmt: skip
    async with app_for(app_config, fake_openai, recorder.url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> 裸婦デッサンを描いて")
        refused = await fake_discord.wait_for_request(
            lambda r: r.method == "POST" and r.path.endswith("/2000/messages")
        )
        await fake_discord.user_message(f"<@{BOT_ID}> 裸婦デッサンを描いて", channel_id=NSFW_CHANNEL_ID)
        allowed = await fake_discord.wait_for_request(
            lambda r: r.method == "POST" and r.path.endswith(f"/{NSFW_CHANNEL_ID}/messages")
        )
        audit = await app.history.audit_log("20")
    assert refused.json["content"] == "Sorry, I can't draw that here." and refused.files == []
    assert "isn't allowed in this channel" in fake_openai.requests[1]["messages"][-1]["content"]
    assert len(allowed.files) == 1
    assert [r.fields["prompt"] for r in recorder.received] == [BLOCKED]  # only the NSFW channel reached the GPU
    assert [(a.outcome, a.verdict) for a in audit] == [("Blocked", "blocked"), ("ok", "nsfw-channel")]


async def test_raw_imagine_is_checked_too(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, recorder.url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command(
            "imagine",
            [{"name": "prompt", "type": 3, "value": "NSFW poster"}, {"name": "raw", "type": 5, "value": True}],
        )
        answer = await fake_discord.wait_for_request(followup_of(interaction))
    assert answer.json["content"] == "I couldn't do that: that isn't allowed in this channel."
    assert recorder.received == []
