"""The layout under one picture: every button in five rows of at most five, the upscale labels as the worker is."""

from __future__ import annotations

from typing import Any

from bot.buttons.registry import ACTIONS, SINGLE_ROWS
from bot.buttons.view import ResultButton, result_view
from egaku.i18n import ENGLISH_VOICE, Catalogs, Voice
from tools.pictures import RenderedImage


def picture(gid: str, candidates: tuple[RenderedImage, ...] = ()) -> RenderedImage:
    return RenderedImage(
        png=b"", prompt="a fox", negative_prompt=None, seed=1, width=64, height=64, steps=2, model="tiny",
        user_words="a fox", guidance=5.0, id=gid, candidates=candidates,
    )  # fmt: skip


def rows(
    upscaler: bool, *images: RenderedImage, voice: Voice = ENGLISH_VOICE
) -> list[list[tuple[str, str | None, str]]]:
    view = result_view(list(images), voice, upscaler=upscaler)
    assert view is not None
    payload: list[dict[str, Any]] = view.to_components()
    return [
        [
            (c["custom_id"].split(":")[1], (c.get("emoji") or {}).get("name"), c.get("label", ""))
            for c in row["components"]
        ]
        for row in payload
    ]


async def test_one_picture_shows_every_button_in_five_rows() -> None:
    assert rows(True, picture("k3m9")) == [
        [("reroll", "🎲", "Reroll"), ("subtle", "🔹", "Vary (subtle)"), ("strong", "🔷", "Vary (strong)"),
         ("edit", "✏️", "Edit")],
        [("upscale2", "🔍", "Upscale 2×"), ("upscale4", "🔎", "Upscale 4×"), ("upscale", "🎨", "Upscale (creative)")],
        [("zoom15", "🔭", "Zoom Out 1.5×"), ("zoom2", "🔭", "Zoom Out 2×"), ("zoom", "🔧", "Custom Zoom")],
        [("panleft", "⬅️", ""), ("panright", "➡️", ""), ("panup", "⬆️", ""), ("pandown", "⬇️", "")],
        [("prompt", "📝", "Show prompt"), ("delete", "🗑️", "Delete")],
    ]  # fmt: skip
    assert {name for row in SINGLE_ROWS for name in row} | {"candidates"} == set(ACTIONS)


async def test_without_an_upscaler_only_the_plain_upscales_change_their_labels() -> None:
    plain, without = rows(True, picture("k3m9")), rows(False, picture("k3m9"))
    assert without[1] == [
        ("upscale2", "🔍", "Upscale 2× (creative: no upscaler)"),
        ("upscale4", "🔎", "Upscale 4× → 2× (creative: no upscaler)"),
        ("upscale", "🎨", "Upscale (creative)"),
    ]
    assert without[:1] + without[2:] == plain[:1] + plain[2:]


async def test_best_of_adds_its_button_to_the_last_row_and_grids_keep_their_rows() -> None:
    best = rows(True, picture("k3m9", candidates=(picture("a2b3"),)))
    assert [name for name, _, _ in best[-1]] == ["prompt", "delete", "candidates"]
    assert len(best) == 5 and max(len(row) for row in best) <= 5  # Discord's limits
    grid = rows(True, picture("k3m9"), picture("a2b3"))
    assert [[label for _, _, label in row] for row in grid] == [
        ["U1", "U2"], ["V1", "V2"], ["Reroll", "Edit", "Show prompt", "Delete"],
    ]  # fmt: skip
    assert grid[0][0][0] == "upscale"  # U is the creative upscale, as before


async def test_buttons_of_older_messages_still_dispatch() -> None:
    """A message posted before the upscaler carries "egaku:upscale:<id>": still the creative upscale."""
    match = ResultButton.__discord_ui_compiled_template__.fullmatch("egaku:upscale:k3m9")
    assert match is not None and str(ACTIONS[match["action"]].label) == "Upscale (creative)"
    assert ResultButton.__discord_ui_compiled_template__.fullmatch("egaku:upscale4:k3m9") is not None


async def test_the_toolbox_speaks_japanese_and_the_pans_stay_arrows() -> None:
    ja = Catalogs.load().voice("ja")
    with_upscaler, without = rows(True, picture("k3m9"), voice=ja), rows(False, picture("k3m9"), voice=ja)
    assert with_upscaler[1:4] == [
        [("upscale2", "🔍", "2倍に拡大"), ("upscale4", "🔎", "4倍に拡大"), ("upscale", "🎨", "拡大(クリエイティブ)")],
        [("zoom15", "🔭", "ズームアウト 1.5倍"), ("zoom2", "🔭", "ズームアウト 2倍"), ("zoom", "🔧", "カスタムズーム")],
        [("panleft", "⬅️", ""), ("panright", "➡️", ""), ("panup", "⬆️", ""), ("pandown", "⬇️", "")],
    ]  # fmt: skip
    assert [label for _, _, label in without[1]] == [
        "2倍に拡大(クリエイティブ: アップスケーラーなし)",
        "4倍 → 2倍に拡大(クリエイティブ: アップスケーラーなし)",
        "拡大(クリエイティブ)",
    ]
