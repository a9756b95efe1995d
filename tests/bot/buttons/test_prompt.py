"""📝 Show prompt's text: every kind of picture the history keeps is named in the presser's language."""

from __future__ import annotations

from typing import get_args

from bot.buttons.prompt import KINDS, describe
from egaku.i18n import Catalogs
from tools.pictures import ImageKind
from tools.stores.history import Generation


def zoomed() -> Generation:
    return Generation(
        prompt="a fox", negative_prompt=None, seed=5, width=80, height=80, steps=2, model="tiny",
        user_words="狐を描いて", kind="zoom", parent_id="k3m9", id="a2b3", conversation="c", user_id="20", file="f",
    )  # fmt: skip


def test_every_kind_of_picture_has_a_name_in_every_language() -> None:
    assert set(KINDS) == set(get_args(ImageKind))
    catalogs = Catalogs.load()
    for locale in catalogs.locales:
        voice = catalogs.voice(locale)
        untranslated = [kind for kind, name in KINDS.items() if voice(name) == str(name)]
        assert untranslated == [], locale


def test_a_zoom_out_is_described_in_japanese() -> None:
    ja = Catalogs.load().voice("ja")
    assert describe(zoomed(), ja).split("\n") == [
        "**あなたの言葉:** 狐を描いて",
        "**プロンプト:** a fox",
        "`id a2b3` · シード 5 · 80×80 · 2ステップ · tiny · `k3m9` のズームアウト",
    ]
