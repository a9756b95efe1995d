"""egaku's languages: fixed user texts are marked in English (`_`, `n_`) and spoken in the asker's language.

    Text      a marked text and its values, not yet in a language (`text.py`)
    Catalogs  the gettext catalogs under `locales/`, read and compiled by Babel (`catalogs.py`)
    Voice     one language's catalog: `voice(text)` is the one place a Text becomes what a user reads

`python -m egaku.i18n extract` collects the marked texts and the slash commands' words into
`locales/egaku.pot` and merges them into every language's `.po` (`extract.py`).
"""

from egaku.i18n.catalogs import ENGLISH, ENGLISH_VOICE, Catalogs, Voice
from egaku.i18n.text import N_, Text, Value, _, n_, text_from_json, text_json

__all__ = [
    "ENGLISH",
    "ENGLISH_VOICE",
    "N_",
    "Catalogs",
    "Text",
    "Value",
    "Voice",
    "_",
    "n_",
    "text_from_json",
    "text_json",
]
