"""A marked text reads as English until a voice speaks it in a catalog's language."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from egaku.errors import MessageTooLong, TooBusy, WorkerUnavailable, user_message
from egaku.i18n import ENGLISH_VOICE, Catalogs, _, n_
from egaku.i18n.extract import write

WAITING = "You already have {count} picture on the way.", "You already have {count} pictures on the way."


def test_a_text_reads_as_its_english_source_with_its_values() -> None:
    assert str(_("I'm very busy right now. Please try again in about {wait} s.", wait=12)) == (
        "I'm very busy right now. Please try again in about 12 s."
    )
    assert [str(n_(*WAITING, count)) for count in (1, 3)] == [
        "You already have 1 picture on the way.",
        "You already have 3 pictures on the way.",
    ]
    nested = _("I need the {permissions} permission.", permissions=_("Attach Files"))
    assert str(nested) == "I need the Attach Files permission." and ENGLISH_VOICE(nested) == str(nested)


def test_the_japanese_voice_speaks_the_catalog_with_the_values_and_nested_texts_in_japanese() -> None:
    ja = Catalogs.load().voice("ja")
    unreachable = user_message(WorkerUnavailable("connection refused"), "1a2b3c4d", ja)
    assert (
        unreachable == "画像サービスに接続できません。しばらくしてからもう一度お試しください。（エラーID `1a2b3c4d`）"
    )
    assert ja(MessageTooLong(5000, 4000).text) == "メッセージが長すぎます（5000文字）。4000文字以内にしてください。"
    waiting = n_(
        "You already have {count} picture on the way. Please wait for it before asking for more.",
        "You already have {count} pictures on the way. Please wait for them before asking for more.",
        2,
    )
    assert ja(TooBusy(waiting).text) == "すでに2枚の絵を描いている途中です。できあがるまで待ってから頼んでください。"
    assert ja(_("{first} and {second}", first=_("Attach Files"), second=_("Embed Links"))) == (
        "「ファイルを添付」と「埋め込みリンク」"
    )


def test_a_language_without_a_catalog_is_spoken_in_english() -> None:
    catalogs = Catalogs.load()
    assert catalogs.voice("fr") is ENGLISH_VOICE and catalogs.voice("en") is ENGLISH_VOICE
    assert catalogs.lookup("fr", "imagine", "command") is None
    assert catalogs.lookup("ja", "imagine", "command") == "描く"
    assert catalogs.every(_("Prompt")) == frozenset({"Prompt", "プロンプト", "프롬프트", "提示词", "提示詞"})


def test_a_translation_that_does_not_format_falls_back_to_english(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Catalog(locale="ja", fuzzy=False)
    broken.add("About {wait} s.", "約{seconds}秒。")
    write(tmp_path / "ja" / "LC_MESSAGES" / "egaku.po", broken)
    with caplog.at_level(logging.WARNING):
        assert Catalogs.load(tmp_path).voice("ja")(_("About {wait} s.", wait=3)) == "About 3 s."
    assert "the ja catalog's entry for 'About {wait} s.' does not format" in caplog.text
