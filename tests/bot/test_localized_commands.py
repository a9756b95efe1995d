"""The synced slash commands speak ja, zh-CN, zh-TW and ko, and say where they may be installed and used."""

from __future__ import annotations

from typing import Any

from egaku.config import Config
from tests.bot.test_imagine import synced_commands
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI

LOCALES = ("ja", "zh-CN", "zh-TW", "ko")
EVERYWHERE = {"contexts": [0, 1, 2], "integration_types": [0, 1]}  # servers, the bot's DM, other DMs; both installs
SERVERS_ONLY = {"contexts": [0], "integration_types": [0]}


def loc(ja: str, zh_cn: str, zh_tw: str, ko: str) -> dict[str, str]:
    """A localization map, in the order of the arguments."""
    return {"ja": ja, "zh-CN": zh_cn, "zh-TW": zh_tw, "ko": ko}


def choice(name: str, value: str, *names: str) -> dict[str, Any]:
    return {"name": name, "value": value, "name_localizations": loc(*names)}


def option(kind: int, name: str, description: str, names: tuple[str, ...], descriptions: tuple[str, ...],
           **more: Any) -> dict[str, Any]:  # fmt: skip
    return {"type": kind, "name": name, "description": description, "required": False,
            "name_localizations": loc(*names), "description_localizations": loc(*descriptions), **more}  # fmt: skip


# The style presets: each one's name is its value too; then ja, zh-CN, zh-TW and ko.
STYLES = (
    ("photo", "写真", "照片", "照片", "사진"),
    ("anime", "アニメ", "动漫", "動漫", "애니메이션"),
    ("watercolor", "水彩", "水彩", "水彩", "수채화"),
    ("oil", "油絵", "油画", "油畫", "유화"),
    ("ukiyoe", "浮世絵", "浮世绘", "浮世繪", "우키요에"),
    ("pixel", "ドット絵", "像素画", "像素畫", "픽셀 아트"),
    ("3d", "3D", "3D", "3D", "3D"),
    ("vivid", "鮮やか", "鲜艳", "鮮豔", "선명하게"),
    ("natural", "自然", "自然", "自然", "자연스럽게"),
)

IMAGINE = {
    "name": "imagine",
    "description": "Draw a picture from a description, in any language",
    "name_localizations": loc("描く", "绘图", "繪圖", "그리기"),
    "description_localizations": loc(
        "説明から絵を描きます（どの言語でも大丈夫）", "根据描述画一张图（任何语言都可以）",
        "根據描述畫一張圖（任何語言都可以）", "설명으로 그림을 그려요 (어떤 언어든 괜찮아요)",
    ),
    "type": 1,
    "nsfw": False,
    "dm_permission": True,
    "default_member_permissions": None,
    **EVERYWHERE,
    "options": [
        option(3, "prompt", "What to draw, in your own words", ("プロンプト", "提示词", "提示詞", "프롬프트"),
               ("描いてほしいもの（自分の言葉で）", "要画什么，用你自己的话说", "要畫什麼，用你自己的話說",
                "그릴 내용 (자유롭게)"), required=True, min_length=1, max_length=4000),
        option(3, "negative", "Things to keep out of the picture", ("ネガティブ", "负面提示", "負面提示", "네거티브"),
               ("絵に入れたくないもの", "不想出现在图中的东西", "不想出現在圖中的東西", "그림에서 빼고 싶은 것"),
               min_length=1, max_length=2000),
        option(3, "aspect", "Shape of the picture", ("縦横比", "宽高比", "長寬比", "비율"),
               ("絵の形", "图片的形状", "圖片的形狀", "그림의 모양"), choices=[
                   choice("square (1:1)", "1:1", "正方形 (1:1)", "正方形 (1:1)", "正方形 (1:1)", "정사각형 (1:1)"),
                   choice("landscape (3:2)", "3:2", "横長 (3:2)", "横向 (3:2)", "橫向 (3:2)", "가로 (3:2)"),
                   choice("wide (16:9)", "16:9", "ワイド (16:9)", "宽屏 (16:9)", "寬螢幕 (16:9)", "와이드 (16:9)"),
                   choice("portrait (2:3)", "2:3", "縦長 (2:3)", "纵向 (2:3)", "直向 (2:3)", "세로 (2:3)"),
                   choice("tall (9:16)", "9:16", "縦長・スリム (9:16)", "竖长 (9:16)", "直長 (9:16)",
                          "세로로 길게 (9:16)"),
               ]),
        option(4, "seed", "A number that makes the result repeatable", ("シード", "种子", "種子", "시드"),
               ("同じ結果を再現するための数値", "让结果可重现的数字", "讓結果可重現的數字",
                "같은 결과를 다시 얻기 위한 숫자"), min_value=0, max_value=4294967295),
        option(3, "style", "A style preset", ("スタイル", "风格", "風格", "스타일"),
               ("スタイルのプリセット", "风格预设", "風格預設", "스타일 프리셋"),
               choices=[choice(name, name, *words) for name, *words in STYLES]),
        option(4, "count", "How many pictures (1-4)", ("枚数", "数量", "數量", "개수"),
               ("枚数（1〜4）", "图片数量（1-4）", "圖片數量（1-4）", "그림 개수 (1-4)"), min_value=1, max_value=4),
        option(3, "model", "Which model to draw with", ("モデル", "模型", "模型", "모델"),
               ("描くのに使うモデル", "用哪个模型来画", "用哪個模型來畫", "그릴 때 쓸 모델"), autocomplete=True),
        option(5, "raw", "Draw your words exactly as written, without the English rewrite",
               ("そのまま", "原样", "原樣", "그대로"),
               ("英語に書き換えず、書いたとおりに描く", "按原文直接画，不改写成英文", "按原文直接畫，不改寫成英文",
                "영어로 바꾸지 않고 쓴 그대로 그리기")),
        option(4, "best_of", "Draw this many candidates and post the one that matches best",
               ("ベスト選出", "择优", "擇優", "베스트선택"),
               ("この枚数の候補を描いて、いちばん合う1枚を投稿する", "画这么多张候选，发布最匹配的一张",
                "畫這麼多張候選，發布最符合的一張", "이만큼 후보를 그려서 가장 잘 맞는 한 장을 올리기"),
               min_value=1, max_value=8),
    ],
}  # fmt: skip


def localizable(payload: dict[str, Any], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every command, subcommand, option and choice of a synced command, with where it is."""
    here = f"{where}/{payload['name']}"
    found = [(here, payload)]
    for child in payload.get("options", []) + payload.get("choices", []):
        found += localizable(child, here)
    return found


async def test_the_synced_commands_carry_their_localizations_and_where_they_may_be_used(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    sync = await synced_commands(app_config, fake_openai, worker_url, fake_discord)
    by_name = {c["name"]: c for c in sync.json}
    assert by_name["imagine"] == IMAGINE
    for name in ("imagine", "describe", "reset", "settings"):
        assert {k: by_name[name][k] for k in EVERYWHERE} == EVERYWHERE  # user installs too: DMs, group DMs, servers
    for name in ("teach", "concepts"):
        assert {k: by_name[name][k] for k in SERVERS_ONLY} == SERVERS_ONLY  # a server's words: its own install
    for where, part in (found for command in sync.json for found in localizable(command)):
        assert sorted(part["name_localizations"]) == sorted(LOCALES), where
        if "description" in part:
            assert sorted(part["description_localizations"]) == sorted(LOCALES), where
    names = [n for command in sync.json for _, part in localizable(command) if "description" in part
             for n in part["name_localizations"].values()]  # fmt: skip
    assert all(n == n.lower() and " " not in n and len(n) <= 32 for n in names)  # Discord's rule for names
