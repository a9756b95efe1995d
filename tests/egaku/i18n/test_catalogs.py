"""The catalogs are complete, and `check` says exactly what keeps one from being complete."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog

from egaku.i18n import Catalogs
from egaku.i18n.extract import problems, template, write

SPOKEN = ("ja", "ko", "zh-CN", "zh-TW")


def test_every_marked_text_and_every_command_word_is_translated_in_every_catalog() -> None:
    fresh = template()
    assert Catalogs.load().locales == SPOKEN
    assert problems(fresh=fresh) == []  # the template is current; no entry is missing, empty, fuzzy or mis-shaped
    ids = {m.id for m in fresh if m.id}
    # The template holds the sources' marks and the commands' words (what discord.py asks the translator for).
    assert {"Cancelled.", "⏳ Waiting for the GPU…", "You said", "Reroll", "imagine", "square (1:1)"} <= ids


def test_check_names_each_problem(tmp_path: Path) -> None:
    fresh = Catalog(locale=None, fuzzy=False)
    fresh.add("imagine", context="command")
    fresh.add("prompt", context="option")
    fresh.add("Ask for your own with `/imagine`!")
    fresh.add("{count} pictures on the way, at {place}")
    fresh.add("Cancelled.")
    fresh.add("Delete")
    ja = Catalog(locale="ja", fuzzy=False)
    ja.add("imagine", "描く", context="command")
    ja.add("prompt", "Prompt Text", context="option")  # not a Discord option name
    ja.add("Ask for your own with `/imagine`!", "`/imagine` で頼んでください！")  # the command's English name
    ja.add("{count} pictures on the way, at {place}", "{count}枚を描いています（{where}）")  # a placeholder renamed
    ja.add("Cancelled.", "取り消しました。", flags=["fuzzy"])
    write(tmp_path / "ja" / "LC_MESSAGES" / "egaku.po", ja)
    assert problems(tmp_path, fresh) == [
        "egaku.pot is stale: run `python -m egaku.i18n extract`",
        "ja: option 'prompt': 'Prompt Text' is not a Discord name",
        "ja: 'Ask for your own with `/imagine`!': '`/imagine` で頼んでください！' names /imagine otherwise than /描く",
        "ja: '{count} pictures on the way, at {place}': '{count}枚を描いています（{where}）' has the placeholders "
        "['count', 'where']",
        "ja: 'Cancelled.' is fuzzy",
        "ja: 'Delete' is missing",
    ]
