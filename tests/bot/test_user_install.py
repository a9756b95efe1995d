"""The app installed to a user's account: /imagine and its buttons in a server the bot never joined and in a
group DM, answered through the interaction alone (no channel reads or posts), its conversation kept per user."""

from __future__ import annotations

from typing import Any

from egaku.config import Config
from tests.agent.test_agent import PROMPT
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.bot.test_conversation import live
from tests.bot.test_describe import png
from tests.bot.test_imagine import followup_of
from tests.bot.test_progress import slow_worker, watched_bot  # noqa: F401  (a fixture)
from tests.fakes.discord import APP_ID, Captured, FakeDiscord
from tests.fakes.discord_places import FOREIGN_CHANNEL_ID, FOREIGN_GUILD_ID, FOREIGN_SERVER, GROUP_DM, GROUP_DM_ID
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.stores.preferences import GuildPolicy


def callback_of(interaction: dict[str, Any]) -> Any:
    path = f"/api/v10/interactions/{interaction['id']}/{interaction['token']}/callback"
    return lambda r: r.method == "POST" and r.path == path


def in_channels(fake: FakeDiscord) -> list[Captured]:
    """Every request the bot made to a channel (a read, a post, typing): none where it is no member."""
    return [r for r in fake.requests if r.path.startswith("/api/v10/channels/")]


def message_with(fake: FakeDiscord, custom_id: str) -> int:
    """The id of the bot's message that carries a button."""
    buttons = {m["id"]: [b["custom_id"] for row in m.get("components", []) for b in row["components"]]
               for m in fake.messages.values()}  # fmt: skip
    return int(next(message for message, ids in buttons.items() if custom_id in ids))


async def test_imagine_in_a_server_the_bot_never_joined_arrives_as_the_interactions_followup(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 5}), Say("Here!"))
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 6}), Say("Again!"))
    prompt = [{"name": "prompt", "type": 3, "value": "a squirrel king"}]
    async with (
        app_for(app_config, fake_openai, worker_url) as app,
        running_bot(fake_discord, app.agent, history=app.history),
    ):
        there = await fake_discord.slash_command("imagine", prompt, place=FOREIGN_SERVER)
        first: Captured = await fake_discord.wait_for_request(followup_of(there))  # type: ignore[arg-type]
        here = await fake_discord.slash_command("imagine", prompt, place=GROUP_DM)
        second: Captured = await fake_discord.wait_for_request(followup_of(here))  # type: ignore[arg-type]
        reroll = first.json["components"][0]["components"][0]["custom_id"]
        press = await fake_discord.press(reroll, message_with(fake_discord, reroll), place=FOREIGN_SERVER)
        again: Captured = await fake_discord.wait_for_request(followup_of(press))  # type: ignore[arg-type]
        drawn = await app.history.get(reroll.rsplit(":", 1)[1])
    assert there["authorizing_integration_owners"] == {"1": "20"} and there["guild_id"] == str(FOREIGN_GUILD_ID)
    assert (first.json["content"], len(first.files), first.json["embeds"][0]["description"]) == ("Here!", 1, PROMPT)
    assert (second.json["content"], len(second.files)) == ("Again!", 1)
    assert reroll.startswith("egaku:reroll:") and len(again.files) == 1  # the button works there too
    assert in_channels(fake_discord) == [] and fake_discord.refused == []  # no channel read or post, no typing
    # One conversation per user wherever the bot is no member: the second request saw the first.
    assert "[alice] /imagine a squirrel king" in str(fake_openai.requests[1]["messages"][:-1])
    assert drawn is not None  # kept with the user's conversation, and where it was made (the server's rules apply)
    assert (drawn.conversation, drawn.guild_id, drawn.channel_id) == (
        "discord:user:20",
        str(FOREIGN_GUILD_ID),
        str(FOREIGN_CHANNEL_ID),
    )


async def test_where_the_bot_is_no_member_the_status_message_is_a_followup_and_cancel_works(
    app_config: Config,
    fake_openai: FakeOpenAI,
    slow_worker: str,  # noqa: F811
    fake_discord: FakeDiscord,
) -> None:
    raw = [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}]

    def status(r: Captured) -> bool:
        rows: list[dict[str, Any]] = (r.json or {}).get("components") or []
        return r.method == "POST" and r.path.startswith(f"/api/v10/webhooks/{APP_ID}/") and bool(rows) and (
            rows[0]["components"][0]["custom_id"].startswith("egaku:cancel:")
        )  # fmt: skip

    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord):
        interaction = await fake_discord.slash_command("imagine", raw, place=GROUP_DM)
        posted = await fake_discord.wait_for_request(status)
        cancel = posted.json["components"][0]["components"][0]["custom_id"]
        await fake_discord.press(cancel, message_with(fake_discord, cancel), place=GROUP_DM)
        final = await fake_discord.wait_for_request(
            lambda r: followup_of(interaction)(r) and r.json.get("content") == "Cancelled.",
            timeout=60,  # type: ignore[operator]
        )
        removed = await fake_discord.wait_for_request(lambda r: r.method == "DELETE", timeout=60)
    assert posted.json["content"].startswith(("⏳", "🎨")) and final.json["content"] == "Cancelled."
    assert removed.path.startswith(f"/api/v10/webhooks/{APP_ID}/{interaction['token']}/messages/")
    assert in_channels(fake_discord) == [] and fake_discord.refused == []
    assert interaction["channel_id"] == str(GROUP_DM_ID) and "guild_id" not in interaction


async def test_describe_in_a_group_dm_reads_the_commands_attachment_and_answers_as_its_followup(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    attachment = fake_discord.attachment(png(), "photo.png")
    option = {"name": "image", "type": 11, "value": attachment["id"]}
    async with live(app_config, fake_openai, recorder, fake_discord):
        interaction = await fake_discord.slash_command(
            "describe", [option], attachments=[attachment], place=GROUP_DM, locale="ja"
        )
        answer: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
    (described,) = [r for r in recorder.received if r.path == "/v1/images/descriptions"]
    (embed,) = answer.json["embeds"]
    assert (embed["title"], embed["description"]) == ("この絵のためのプロンプト", described.answer["prompt"])
    assert answer.json["components"][0]["components"][0]["label"] == "これを描く"
    assert in_channels(fake_discord) == [] and fake_discord.refused == []  # the upload came as the option


async def test_a_servers_settings_apply_where_the_bot_is_no_member(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    prompt = [{"name": "prompt", "type": 3, "value": "a squirrel king"}]
    async with app_for(app_config, fake_openai, worker_url) as app:
        # That server's moderators (through their own install of egaku) keep the bot to one other channel.
        await app.preferences.set_guild(str(FOREIGN_GUILD_ID), GuildPolicy(channels=["2201"]))
        async with running_bot(fake_discord, app.agent, history=app.history, preferences=app.preferences):
            there = await fake_discord.slash_command("imagine", prompt, place=FOREIGN_SERVER, locale="ja")
            refused: Captured = await fake_discord.wait_for_request(callback_of(there))
    assert refused.json == {"type": 4, "data": {
        "content": "このサーバーでは、このチャンネルでは描きません。<#2201> で試してください。",
        "flags": 64, "tts": False, "allowed_mentions": {"parse": []},
    }}  # fmt: skip
    assert fake_openai.requests == [] and in_channels(fake_discord) == []
