"""A fixed user text before it is in a language: its English source (the gettext msgid) and its values.

Code that writes to a user never builds the sentence itself: it marks it, `_("Cancelled.")` or
`_("I'm very busy right now. Please try again in about {wait} s.", wait=12)`, and the one place
that answers the user (`egaku.i18n.Voice`) looks the msgid up in the asker's catalog and fills
in the values. Babel's extractor finds the marks (`python -m egaku.i18n extract`).

A `Text` reads as English with `str()`: the log, the model and the CLI see the source text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

# A value for a {placeholder}: a number or a string shown as it is (a name, an id, the user's words),
# or another fixed text, put in the same language as the sentence around it.
Value = Union[str, int, float, "Text"]


@dataclass(frozen=True)
class Text:
    """A user text not yet in a language: the English msgid, and the values of its {placeholders}."""

    msgid: str
    values: tuple[tuple[str, Value], ...] = ()
    plural: str | None = None  # the English plural, when the sentence depends on `count`
    count: int | None = None

    def render(self, lookup: Callable[[Text], str]) -> str:
        """The sentence from the template `lookup` gives for it, its values filled in (texts by `lookup` too)."""
        values = {name: value.render(lookup) if isinstance(value, Text) else value for name, value in self.values}
        if self.count is not None:
            values.setdefault("count", self.count)
        return lookup(self).format(**values)

    def __str__(self) -> str:
        """The English text, as the source writes it."""
        return self.render(english_template)


def english_template(text: Text) -> str:
    """The source's own template: the msgid, or its plural form for a count other than one."""
    return text.plural if text.plural is not None and text.count != 1 else text.msgid


def _(msgid: str, /, **values: Value) -> Text:
    """Mark a fixed user text for translation (the values fill its {placeholders})."""
    return Text(msgid, tuple(values.items()))


def n_(singular: str, plural: str, count: int, /, **values: Value) -> Text:
    """Mark a fixed user text whose wording depends on a number (`{count}` is that number)."""
    return Text(singular, tuple(values.items()), plural=plural, count=count)


def N_(msgid: str, /) -> str:
    """Mark a msgid kept as a plain string (a class's `user_text`) for extraction; it is returned as it is."""
    return msgid


def text_json(text: Text) -> str:
    """A text as JSON, to keep it until it is said (the job journal): its msgid, values, plural and count."""
    return json.dumps(_plain(text), ensure_ascii=False)


def text_from_json(data: str) -> Text:
    """A text back from `text_json`."""
    return _text(json.loads(data))


def _plain(text: Text) -> dict[str, Any]:
    values = [[name, _plain(value) if isinstance(value, Text) else value] for name, value in text.values]
    return {"msgid": text.msgid, "values": values, "plural": text.plural, "count": text.count}


def _text(plain: dict[str, Any]) -> Text:
    values = tuple((name, _text(value) if isinstance(value, dict) else value) for name, value in plain["values"])
    return Text(plain["msgid"], values, plural=plain["plural"], count=plain["count"])
