"""Which language the bot answers in: the one decision, clue by clue."""

from __future__ import annotations

import pytest

from bot.language import Clues, chinese_variant, choose, language_named, language_written

SPOKEN = ("ja", "ko", "zh-CN", "zh-TW")


@pytest.mark.parametrize(
    ("clues", "language"),
    [
        (Clues(), "en"),
        # An interaction: the user's client, then the server's locale.
        (Clues(user_locale="ja", guild_locale="en-US"), "ja"),
        (Clues(user_locale="en-US", guild_locale="ja"), "en"),
        (Clues(user_locale="en-GB"), "en"),
        (Clues(user_locale="fr", guild_locale="ko"), "ko"),  # a language the bot does not speak passes on
        (Clues(user_locale="pt-BR"), "en"),
        (Clues(user_locale="zh-TW", guild_locale="ja"), "zh-TW"),
        # A mention: the /settings reply language, then the message's language, then the server's.
        (Clues(setting="日本語", written="draw a fox", guild_locale="ko"), "ja"),
        (Clues(setting="English", written="夜の東京タワー", guild_locale="ja"), "en"),
        (Clues(written="夜の東京タワーを描いて", guild_locale="en-US"), "ja"),
        (Clues(written="draw a fox", guild_locale="ja"), "en"),
        (Clues(written="여우를 그려 줘", guild_locale="ja"), "ko"),
        (Clues(written="画一条龙", guild_locale="en-US"), "zh-CN"),
        (Clues(written="畫一條龍", guild_locale="en-US"), "zh-TW"),
        (Clues(written="🦊🦊", guild_locale="ja"), "ja"),  # no letters: the server's locale
        (Clues(written="нарисуй лису", guild_locale="ko"), "ko"),  # Russian is not spoken here: the server's
        (Clues(setting="Klingon", written="draw a fox"), "en"),
    ],
)
def test_the_first_clue_naming_a_spoken_language_wins(clues: Clues, language: str) -> None:
    assert choose(clues, SPOKEN) == language


def test_a_language_without_a_catalog_is_never_chosen() -> None:
    assert choose(Clues(user_locale="ja", written="夜の東京"), ()) == "en"


@pytest.mark.parametrize(
    ("setting", "language"),
    [
        ("日本語", "ja"), ("Japanese", "ja"), ("ja", "ja"), ("にほんご", None), ("English", "en"), ("英語", "en"),
        ("한국어", "ko"), ("Korean", "ko"), ("韓国語", "ko"), ("中文", "zh-CN"), ("简体中文", "zh-CN"),
        ("Chinese (Simplified)", "zh-CN"), ("繁體中文", "zh-TW"), ("中文（繁體）", "zh-TW"),
        ("Traditional Chinese", "zh-TW"), ("zh-TW", "zh-TW"), ("zh_CN", "zh-CN"), ("français", None), ("", None),
    ],
)  # fmt: skip
def test_a_reply_language_setting_is_read_by_its_name_in_any_of_the_spoken_languages(
    setting: str, language: str | None
) -> None:
    assert language_named(setting) == language


def test_chinese_is_told_apart_by_the_characters_only_one_script_has() -> None:
    assert [chinese_variant(t) for t in ("龙", "龍", "中文")] == ["zh-CN", "zh-TW", "zh-CN"]
    assert language_written("") is None and language_written("夜の東京") == "ja"
