"""/settings: a user's defaults and a server's rules, persisted across restarts."""

from __future__ import annotations

from typing import Any

from egaku.config import Config
from tests.bot.test_conversation import live, say
from tests.bot.test_imagine import callback_of, followup_of
from tests.fakes.discord import BOT_ID, CHANNEL_ID, NSFW_CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker

NOT_ADMIN = str(((1 << 53) - 1) & ~(1 << 5))  # everything but Manage Server


def sub(name: str, **values: Any) -> list[dict[str, Any]]:
    types = {bool: 5, int: 4, str: 3}
    options = [{"name": k, "type": types[type(v)], "value": v} for k, v in values.items()]
    return [{"name": name, "type": 1, "options": options}]


async def settings(fake: FakeDiscord, name: str, permissions: str | None = None, **values: Any) -> dict[str, Any]:
    interaction = await fake.slash_command("settings", sub(name, **values), member_permissions=permissions)
    return (await fake.wait_for_request(callback_of(interaction))).json


async def test_user_defaults_apply_to_imagine_and_survive_a_restart(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        saved = await settings(fake_discord, "me", aspect="16:9", style="pixel", raw=True)
    assert saved["data"]["flags"] == 64
    assert saved["data"]["content"] == (
        "**Your settings**\naspect: 16:9 · style: pixel · raw: on · reply language: same as you write"
    )
    async with live(app_config, fake_openai, recorder, fake_discord):  # a restart
        interaction = await fake_discord.slash_command("imagine", [{"name": "prompt", "type": 3, "value": "a fox"}])
        await fake_discord.wait_for_request(followup_of(interaction))
    (received,) = recorder.received
    assert (received.fields["aspect"], received.fields["style"], received.fields["prompt"]) == (
        "16:9",
        "pixel",
        "a fox",
    )
    assert fake_openai.requests == []  # raw by default: no rewrite


async def test_server_rules_are_for_administrators_and_limit_channels(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("hello"))
    async with live(app_config, fake_openai, recorder, fake_discord):
        refused = await settings(fake_discord, "server", permissions=NOT_ADMIN, nsfw=True)
        saved = await settings(fake_discord, "server", only_here=True, max_jobs=3)
        elsewhere = await say_in(fake_discord, NSFW_CHANNEL_ID, f"<@{BOT_ID}> draw a fox")
        here = await say(fake_discord, f"<@{BOT_ID}> hi")
    assert refused["data"]["content"] == "Only members with the Manage Server permission can change these."
    assert saved["data"]["content"] == (
        f"**Server settings**\nNSFW in NSFW-marked channels: not allowed · channels: <#{CHANNEL_ID}> · "
        "images in flight: 3 · default model: bot default · best of: bot default"
    )
    assert elsewhere.json["content"] == f"I don't draw in this channel on this server. Try <#{CHANNEL_ID}>."
    assert here.json["content"] == "hello"
    assert len(fake_openai.requests) == 1


async def say_in(fake: FakeDiscord, channel_id: int, text: str) -> Any:
    path = f"/api/v10/channels/{channel_id}/messages"
    await fake.user_message(text, channel_id=channel_id)
    return await fake.wait_for_request(lambda r: r.method == "POST" and r.path == path)


async def test_reply_language_reaches_the_model(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox"}), Say("キツネです"))
    async with live(app_config, fake_openai, recorder, fake_discord):
        await settings(fake_discord, "me", language="日本語")
        await say(fake_discord, f"<@{BOT_ID}> draw a fox")
    assert fake_openai.requests[0]["messages"][-1]["content"] == "[alice] (reply in 日本語) draw a fox"


async def test_a_servers_best_of_default_applies_within_the_bots_cap(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    async with live(app_config, fake_openai, recorder, fake_discord):
        too_many = await settings(fake_discord, "server", best_of=5)
        saved = await settings(fake_discord, "server", best_of=2)
    async with live(app_config, fake_openai, recorder, fake_discord):  # a restart
        options = [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}]
        interaction = await fake_discord.slash_command("imagine", options)
        await fake_discord.wait_for_request(followup_of(interaction))
    assert too_many["data"]["content"] == "I can pick the best of 1 to 4 pictures here; you asked for 5."
    assert saved["data"]["content"].endswith("default model: bot default · best of: 2")
    (received,) = recorder.received
    assert received.fields["best_of"] == 2
