"""The prompt's language, by script, and how a model's languages are put to the LLM."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tools.checks.languages import PromptLanguages, detect_language, language_refusal, names_of, prompt_language_rule
from worker.settings import ModelPreset


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("夜の東京の路地裏で、赤い提灯の下に座る白い猫。", "ja"),
        ("東京タワーの夜景", "ja"),  # mostly Han characters, but kana make it Japanese
        ("一只白猫坐在红灯笼下，夜晚的东京小巷，水彩画。", "zh"),
        ("밤의 도쿄 골목, 빨간 등불 아래 앉아 있는 흰 고양이", "ko"),
        ("Белая кошка под красным фонарём", "ru"),
        ("A white cat under a red lantern, watercolour.", "en"),
        ('A shop sign that reads "営業中" and 「いらっしゃいませ」 in neon, at night.', "en"),  # quotes stay verbatim
        ("夜の東京の路地裏、cyberpunk な雰囲気の猫", "ja"),  # an English word does not make it English
        ("A portrait of 山田 in a garden", "en"),
        ("はい、「OPEN」の看板を描きました！", "ja"),
        ("好的，我画了一张写着 OPEN 的招牌。", "zh"),
        ("네, 그렸어요!", "ko"),
        ("漢字", "zh"),
        ("1234 !!", None),
        ("…", None),
        ("", None),
    ],
)
def test_the_language_is_told_by_script_outside_quotes(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_the_rule_asks_for_english_or_keeps_the_users_language() -> None:
    assert prompt_language_rule(("en",)) == "in English (translate other languages into English)"
    assert prompt_language_rule(("zh", "en")) == (
        "in the user's own language when it is Chinese or English (the drawing model reads these natively: "
        "do not translate them), otherwise translated into English"
    )
    assert prompt_language_rule(("ja",)) == (
        "in Japanese (the drawing model reads only Japanese: translate other languages into Japanese)"
    )
    assert names_of(("ja", "zh", "en")) == "Japanese, Chinese or English"


def test_a_refusal_names_what_the_model_reads() -> None:
    assert str(language_refusal("ja", ("zh", "en"), "qwen")) == (
        "the qwen model reads Chinese and English, not Japanese: write `prompt` in English"
    )


def test_languages_are_looked_up_per_preset_with_the_default_for_none() -> None:
    languages = PromptLanguages({"qwen": ("zh", "en"), "sdxl": ("en",)}, default=("zh", "en"))
    assert languages.of("qwen") == ("zh", "en")
    assert languages.of("sdxl") == ("en",)
    assert languages.of(None) == ("zh", "en")
    assert languages.of("unknown") == ("en",)


def test_a_preset_reads_english_by_default_and_refuses_a_code_that_is_not_one() -> None:
    assert ModelPreset(source="x").prompt_language == ["en"]
    assert ModelPreset(source="x", prompt_language=["zh", "en"]).prompt_language == ["zh", "en"]
    with pytest.raises(ValidationError, match=r"prompt_language\.0"):
        ModelPreset(source="x", prompt_language=["Japanese"])
    with pytest.raises(ValidationError, match="prompt_language"):
        ModelPreset(source="x", prompt_language=[])
