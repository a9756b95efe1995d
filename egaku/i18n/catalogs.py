"""The message catalogs (gettext `.po` files, read and compiled by Babel) and the voice that speaks with one.

The catalogs live beside this module, one per language, as gettext lays them out:
`locales/<ll or ll_CC>/LC_MESSAGES/egaku.po`. They are read once at start-up, compiled in
memory with Babel's own compiler (fuzzy entries left out, as `msgfmt` does) and served by the
standard library's `gettext`, so plural rules come from each catalog's own header.

Languages are named with Discord's locale tags (`ja`, `zh-CN`, `zh-TW`, `ko`); English, the
source, has no catalog.
"""

from __future__ import annotations

import gettext
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from egaku.i18n.text import Text

log = logging.getLogger(__name__)

ENGLISH = "en"
DOMAIN = "egaku"
LOCALES = Path(__file__).resolve().parent / "locales"


def folder_of(tag: str) -> str:
    """A catalog's folder for a Discord locale tag: zh-CN -> zh_CN."""
    return tag.replace("-", "_")


def tag_of(folder: str) -> str:
    """A Discord locale tag for a catalog's folder: zh_CN -> zh-CN."""
    return folder.replace("_", "-")


@dataclass(frozen=True)
class Voice:
    """Speaks fixed texts in one language: the one place a `Text` becomes what a user reads."""

    locale: str = ENGLISH
    translations: gettext.NullTranslations = field(default_factory=gettext.NullTranslations)

    def __call__(self, text: Text) -> str:
        """The text in this voice's language; English where the catalog has no (usable) entry."""
        try:
            return text.render(self.template)
        except (KeyError, IndexError, ValueError):
            # A translation whose placeholders do not match its msgid (the completeness test catches these).
            log.warning("the %s catalog's entry for %r does not format; using English", self.locale, text.msgid)
            return str(text)

    def template(self, text: Text) -> str:
        """The catalog's template for a text (its msgid when it has none)."""
        if text.plural is not None:
            return self.translations.ngettext(text.msgid, text.plural, 1 if text.count is None else text.count)
        return self.translations.gettext(text.msgid)


ENGLISH_VOICE = Voice()


class Catalogs:
    """Every language's catalog, compiled; `voice(tag)` speaks one of them. Load with `Catalogs.load()`."""

    def __init__(self, translations: Mapping[str, gettext.GNUTranslations]) -> None:
        self._translations = dict(translations)

    @classmethod
    def load(cls, folder: Path = LOCALES) -> Catalogs:
        """Read and compile every `<locale>/LC_MESSAGES/egaku.po` under `folder`."""
        compiled: dict[str, gettext.GNUTranslations] = {}
        for po in sorted(folder.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
            with po.open("rb") as file:
                catalog = read_po(file, locale=po.parent.parent.name, domain=DOMAIN)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            compiled[tag_of(po.parent.parent.name)] = gettext.GNUTranslations(buffer)
        return cls(compiled)

    @property
    def locales(self) -> tuple[str, ...]:
        """The languages spoken besides English, by Discord locale tag."""
        return tuple(self._translations)

    def voice(self, locale: str) -> Voice:
        """The voice for a language this bot has a catalog for; English otherwise."""
        translations = self._translations.get(locale)
        return Voice(locale, translations) if translations is not None else ENGLISH_VOICE

    def every(self, text: Text) -> frozenset[str]:
        """The text in every language, English included (to recognise a label the bot wrote in any of them)."""
        return frozenset({str(text), *(self.voice(locale)(text) for locale in self.locales)})

    def lookup(self, locale: str, msgid: str, context: str | None = None) -> str | None:
        """A catalog's own translation of a msgid (with its msgctxt), or None where it has none."""
        translations = self._translations.get(locale)
        if translations is None:
            return None
        found = translations.pgettext(context, msgid) if context else translations.gettext(msgid)
        return found if found != msgid else None
