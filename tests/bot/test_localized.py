"""The bot's own words in the asker's language, through the fake Discord: Japanese for a Japanese client or
message, English (unchanged) for en-US. The model's words and the prompt stay as they were written."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.services import BotServices
from egaku.config import Config, LimitsSettings
from egaku.errors import TooBusy
from tests.agent.test_agent import PROMPT
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for, channel_post
from tests.bot.test_imagine import followup_of
from tests.bot.test_progress import slow_worker, status_posts, watched_bot  # noqa: F401  (a fixture)
from tests.fakes.discord import BOT_ID, GUILD_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tools.checks.limits import JobLimiter
from tools.service.images import ImageService
from tools.stores.preferences import UserPrefs

JAPANESE = {
    "unreachable": (
        r"画像サービスに接続できません。しばらくしてからもう一度お試しください。（エラーID `[0-9a-f]{8}`）"
    ),
    "busy": "すでに1枚の絵を描いている途中です。できあがるまで待ってから頼んでください。",
    "status": (
        r"⏳ GPU の順番待ち…|⏳ 順番待ち（\d+番目(、あと約\d+秒)?）…"
        r"|🎨 描いています…( \d{1,3}%( · 残り約\d+秒)?)?"
    ),
    "cancel": "キャンセル",
    "cancelling": "取り消しています…",
    "cancelled": "取り消しました。",
    "embed": ("プロンプト", "あなたの言葉", "シード 5 · 64×64 · 2ステップ · tiny"),
    "buttons": [  # this worker has no upscaler: the plain upscales say that they fall back
        ["描き直す", "バリエーション（小）", "バリエーション（大）", "編集"],
        [
            "2倍に拡大(クリエイティブ: アップスケーラーなし)",
            "4倍 → 2倍に拡大(クリエイティブ: アップスケーラーなし)",
            "拡大(クリエイティブ)",
        ],
        ["ズームアウト 1.5倍", "ズームアウト 2倍", "カスタムズーム"],
        ["", "", "", ""],  # the pans: arrows only
        ["プロンプトを見る", "削除"],
    ],
    "shown": (
        "**あなたの言葉:** リスの王",
        f"**プロンプト:** {PROMPT}",
        r"`id \w+` · シード 5 · 64×64 · 2ステップ · tiny · 新規",
    ),
}
ENGLISH = {
    "unreachable": (
        r"The image service is not reachable right now\. Please try again shortly\. \(error id `[0-9a-f]{8}`\)"
    ),
    "busy": "You already have 1 picture on the way. Please wait for it before asking for more.",
    "status": (
        r"⏳ Waiting for the GPU…|⏳ In the queue \(position \d+(, about \d+ s)?\)…"
        r"|🎨 Drawing…( \d{1,3}%( · about \d+ s left)?)?"
    ),
    "cancel": "Cancel",
    "cancelling": "Cancelling…",
    "cancelled": "Cancelled.",
    "embed": ("Prompt", "You said", "seed 5 · 64×64 · 2 steps · tiny"),
    "buttons": [
        ["Reroll", "Vary (subtle)", "Vary (strong)", "Edit"],
        ["Upscale 2× (creative: no upscaler)", "Upscale 4× → 2× (creative: no upscaler)", "Upscale (creative)"],
        ["Zoom Out 1.5×", "Zoom Out 2×", "Custom Zoom"],
        ["", "", "", ""],
        ["Show prompt", "Delete"],
    ],
    "shown": (
        "**You said:** リスの王",
        f"**Prompt:** {PROMPT}",
        r"`id \w+` · seed 5 · 64×64 · 2 steps · tiny · generate",
    ),
}
BY_LOCALE = pytest.mark.parametrize(("locale", "said"), [("ja", JAPANESE), ("en-US", ENGLISH)])


def raw(prompt: str) -> list[dict[str, Any]]:
    return [{"name": "prompt", "type": 3, "value": prompt}, {"name": "raw", "type": 5, "value": True}]


def callback(fake: FakeDiscord, interaction: dict[str, Any]) -> Any:
    path = f"/api/v10/interactions/{interaction['id']}/{interaction['token']}/callback"
    return fake.wait_for_request(lambda r: r.method == "POST" and r.path == path)


def labels(body: dict[str, Any]) -> list[list[str]]:
    return [[button.get("label", "") for button in row["components"]] for row in body["components"]]


@BY_LOCALE
async def test_a_failure_and_a_busy_answer_are_in_the_clients_language(
    locale: str, said: dict[str, Any], app_config: Config, fake_openai: FakeOpenAI, fake_discord: FakeDiscord
) -> None:
    limiter = JobLimiter(LimitsSettings(per_user_running=1, per_user_queued=0))
    async with app_for(app_config, fake_openai, "http://127.0.0.1:9") as app:
        images = ImageService(app.worker, history=app.history, limiter=limiter)
        services = BotServices(agent=app.agent, images=images, history=app.history)
        async with running_bot(fake_discord, app.agent, services=services):
            down = await fake_discord.slash_command("imagine", raw("a fox"), locale=locale)
            failure: Captured = await fake_discord.wait_for_request(followup_of(down))  # type: ignore[arg-type]
            async with limiter.slot("20", str(GUILD_ID)):  # alice already has a picture on the way
                full = await fake_discord.slash_command("imagine", raw("a fox"), locale=locale)
                busy: Captured = await fake_discord.wait_for_request(followup_of(full))  # type: ignore[arg-type]
    assert re.fullmatch(said["unreachable"], failure.json["content"])
    assert busy.json["content"] == said["busy"]
    with pytest.raises(TooBusy):  # the same words the service raised, spoken in the asker's language
        async with limiter.slot("20", None), limiter.slot("20", None):
            pass


@BY_LOCALE
async def test_the_status_message_its_cancel_button_and_the_cancellation_are_in_the_clients_language(
    locale: str, said: dict[str, Any], app_config: Config, fake_openai: FakeOpenAI, slow_worker: str,  # noqa: F811
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    async with watched_bot(app_config, fake_openai, slow_worker, fake_discord):
        interaction = await fake_discord.slash_command("imagine", raw("a fox in the snow"), locale=locale)
        status = await fake_discord.wait_for_request(lambda r: r in status_posts(fake_discord))
        button = status.json["components"][0]["components"][0]
        message_id = int(next(m for m in fake_discord.messages.values() if m.get("components"))["id"])
        press = await fake_discord.press(button["custom_id"], message_id, locale=locale)
        answer = await callback(fake_discord, press)
        final: Captured = await fake_discord.wait_for_request(followup_of(interaction), timeout=60)  # type: ignore[arg-type]
    assert re.fullmatch(said["status"], status.json["content"])
    assert button["label"] == said["cancel"]
    assert answer.json["data"]["content"] == said["cancelling"]
    assert final.json["content"] == said["cancelled"]


@BY_LOCALE
async def test_the_result_embed_its_buttons_and_show_prompt_are_in_the_clients_language(
    locale: str, said: dict[str, Any], app_config: Config, fake_openai: FakeOpenAI, worker_url: str,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 5}), Say("できました！"))
    async with (
        app_for(app_config, fake_openai, worker_url) as app,
        running_bot(fake_discord, app.agent, history=app.history),
    ):
        interaction = await fake_discord.slash_command(
            "imagine", [{"name": "prompt", "type": 3, "value": "リスの王"}], locale=locale
        )
        result: Captured = await fake_discord.wait_for_request(followup_of(interaction))  # type: ignore[arg-type]
        prompt_button = result.json["components"][-1]["components"][0]["custom_id"]
        message_id = int(next(m for m in fake_discord.messages.values() if m.get("components"))["id"])
        shown = await callback(fake_discord, await fake_discord.press(prompt_button, message_id, locale=locale))
    assert result.json["content"] == "できました！"  # the model's own words, as it wrote them
    (embed,) = result.json["embeds"]
    assert (embed["title"], embed["fields"][0]["name"], embed["footer"]["text"]) == said["embed"]
    assert (embed["description"], embed["fields"][0]["value"]) == (PROMPT, "リスの王")  # the prompt stays as written
    assert labels(result.json) == said["buttons"]
    you_said, prompt, parameters = shown.json["data"]["content"].split("\n")
    assert (you_said, prompt) == said["shown"][:2]
    assert re.fullmatch(said["shown"][2], parameters)


async def test_a_japanese_mention_in_an_english_server_gets_japanese_fixed_texts(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    assert fake_discord.preferred_locale == "en-US"
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 5}), Say("できました！"))
    async with (
        app_for(app_config, fake_openai, worker_url) as app,
        running_bot(fake_discord, app.agent, history=app.history),
    ):
        await fake_discord.user_message(f"<@{BOT_ID}> 夜の東京タワーを描いて")
        drawn = await fake_discord.wait_for_request(channel_post)
        await fake_discord.user_message(f"<@{BOT_ID}> やめて")
        nothing = await fake_discord.wait_for_request(lambda r: channel_post(r) and r is not drawn)
    (embed,) = drawn.json["embeds"]
    assert (embed["title"], embed["fields"][0]["name"], embed["footer"]["text"]) == JAPANESE["embed"]
    assert labels(drawn.json) == JAPANESE["buttons"]
    assert nothing.json["content"] == "ここで取り消せる依頼はありません。"


async def test_a_reply_language_setting_wins_over_the_messages_language(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 5}), Say("Here it is!"))
    async with app_for(app_config, fake_openai, worker_url) as app:
        await app.preferences.set_user("20", UserPrefs(language="English"))
        async with running_bot(fake_discord, app.agent, history=app.history, preferences=app.preferences):
            await fake_discord.user_message(f"<@{BOT_ID}> 夜の東京タワーを描いて")
            drawn = await fake_discord.wait_for_request(channel_post)
    (embed,) = drawn.json["embeds"]
    assert (embed["title"], embed["fields"][0]["name"], embed["footer"]["text"]) == ENGLISH["embed"]
    assert labels(drawn.json) == ENGLISH["buttons"]
