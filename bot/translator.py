"""The slash commands in every language the catalogs speak: discord.py's `app_commands.Translator`.

discord.py asks it for every command, group, option and choice name and every description when
the commands are synced, once per Discord locale; what it answers is sent as their
`name_localizations` and `description_localizations`. Names live in the catalogs under a msgctxt
(`command`, `option`, `choice`), so that the name "prompt" and the label "Prompt" are separate
entries; descriptions have none.
"""

from __future__ import annotations

from discord import Locale
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, Translator, locale_str

from egaku.i18n import Catalogs

# Which msgctxt a translated name lives under; descriptions have none.
CONTEXTS = {
    TranslationContextLocation.command_name: "command",
    TranslationContextLocation.group_name: "command",
    TranslationContextLocation.parameter_name: "option",
    TranslationContextLocation.choice_name: "choice",
}


def context_of(location: TranslationContextLocation) -> str | None:
    """The msgctxt for a place in a command (None for descriptions)."""
    return CONTEXTS.get(location)


class CatalogTranslator(Translator):
    """Looks the commands' words up in the catalogs; None (no localization) where a catalog has no entry."""

    def __init__(self, catalogs: Catalogs) -> None:
        self._catalogs = catalogs

    async def translate(self, string: locale_str, locale: Locale, context: TranslationContextTypes) -> str | None:
        """The word in that Discord locale, or None."""
        return self._catalogs.lookup(locale.value, string.message, context_of(context.location))
