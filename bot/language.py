"""Which language the bot speaks to someone: the one place that decides it.

The clues, strongest first (`choose`):

1. their `/settings me` reply language (mentions and replies; free words such as 日本語, English, ko);
2. their Discord client's locale (interactions: slash commands, buttons, modals);
3. the language their message is written in (mentions and replies; the project's detector, by script);
4. the server's locale;

and English, the source, when no clue names a language the catalogs speak. A clue naming a
language the bot does not speak (a French client, say) passes to the next one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import discord
from babel import Locale

from bot.services import BotServices
from egaku.i18n import ENGLISH, Voice
from tools.checks.languages import detect_language

SIMPLIFIED, TRADITIONAL = "zh-CN", "zh-TW"
# The languages whose names a reply-language setting is matched against, and the locales the names are in.
_NAMED = {"en": ENGLISH, "ja": "ja", "ko": "ko"}
_NAME_LOCALES = ("en", "ja", "ko", "zh_Hans", "zh_Hant")
_PUNCTUATION = re.compile(r"[\s()（）\[\]・,，、.。_-]+")


class Speaking(Protocol):
    """The bot, as far as choosing its language goes: its services carry the catalogs."""

    @property
    def services(self) -> BotServices:
        """What the extensions need."""
        ...


@dataclass(frozen=True)
class Clues:
    """What tells the language to answer someone in; any may be missing."""

    setting: str | None = None  # their /settings me reply language, as they wrote it
    user_locale: str | None = None  # their Discord client's locale (interactions)
    written: str | None = None  # the words of their message (mentions, replies, DMs)
    guild_locale: str | None = None  # the server's locale


def choose(clues: Clues, spoken: Collection[str]) -> str:
    """The language to answer in, as a Discord locale tag: the first clue naming one in `spoken`, else English."""
    for found in (
        language_named(clues.setting),
        from_locale(clues.user_locale),
        language_written(clues.written),
        from_locale(clues.guild_locale),
    ):
        if found is not None and (found == ENGLISH or found in spoken):
            return found
    return ENGLISH


def from_locale(tag: str | None) -> str | None:
    """A Discord locale as the bot's language tag: en-US and en-GB are English; others are kept."""
    if not tag:
        return None
    return ENGLISH if tag.split("-")[0] == ENGLISH else tag


def language_written(text: str | None) -> str | None:
    """The language a message is written in (by script), as a tag: Chinese split by its characters."""
    language = detect_language(text) if text else None
    return chinese_variant(text or "") if language == "zh" else language


def chinese_variant(text: str) -> str:
    """Traditional Chinese where the text has characters only Big5 holds; Simplified otherwise."""
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        try:
            text.encode("big5")
        except UnicodeEncodeError:
            return SIMPLIFIED
        return TRADITIONAL
    return SIMPLIFIED


def language_named(setting: str | None) -> str | None:
    """The language a reply-language setting names ("日本語", "Korean", "zh-TW", "繁體中文"), if the bot knows it."""
    if not setting:
        return None
    words = _PUNCTUATION.sub("", setting.casefold())
    names = _names()
    if words in names.codes:
        return names.codes[words]
    if words in names.languages:
        return names.languages[words]
    if any(name in words for name in names.chinese):
        if any(script in words for script in names.traditional):
            return TRADITIONAL
        if any(script in words for script in names.simplified):
            return SIMPLIFIED
        return chinese_variant(setting)
    return None


@dataclass(frozen=True)
class _Names:
    codes: dict[str, str]
    languages: dict[str, str]
    chinese: frozenset[str]
    simplified: frozenset[str]
    traditional: frozenset[str]


@functools.cache
def _names() -> _Names:
    """Language and script names from CLDR (Babel's locale data), read once, when first needed."""
    shown = [Locale.parse(locale) for locale in _NAME_LOCALES]
    languages = {
        _PUNCTUATION.sub("", locale.languages[code].casefold()): tag for code, tag in _NAMED.items() for locale in shown
    }
    codes = {"en": ENGLISH, "ja": "ja", "ko": "ko", "zh": SIMPLIFIED, "zhcn": SIMPLIFIED, "zhtw": TRADITIONAL,
             "zhhans": SIMPLIFIED, "zhhant": TRADITIONAL, "zhhk": TRADITIONAL}  # fmt: skip
    return _Names(
        codes=codes,
        languages=languages,
        chinese=frozenset(locale.languages["zh"].casefold() for locale in shown) | {"中国話", "汉语", "漢語", "華語"},
        simplified=frozenset(locale.scripts["Hans"].casefold() for locale in shown) | {"简", "簡"},
        traditional=frozenset(locale.scripts["Hant"].casefold() for locale in shown) | {"繁", "正體"},
    )


def interaction_voice(bot: Speaking, interaction: discord.Interaction) -> Voice:
    """The voice for a slash command, a button or a modal: the user's client locale, then the server's."""
    guild_locale = interaction.guild_locale.value if interaction.guild_locale else None
    return _voice(bot, Clues(user_locale=interaction.locale.value, guild_locale=guild_locale))


def message_voice(bot: Speaking, message: discord.Message, setting: str | None, words: str) -> Voice:
    """The voice for a mention, a reply or a DM: their setting, their message's language, then the server's."""
    guild_locale = message.guild.preferred_locale.value if message.guild else None
    return _voice(bot, Clues(setting=setting, written=words, guild_locale=guild_locale))


def _voice(bot: Speaking, clues: Clues) -> Voice:
    catalogs = bot.services.catalogs
    return catalogs.voice(choose(clues, catalogs.locales))
