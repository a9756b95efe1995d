"""Collect every marked text and every slash command's words into the template, and merge it into the catalogs.

    python -m egaku.i18n extract     the template (locales/egaku.pot) from the sources and the command tree,
                                     merged into every language's .po (new entries empty, changed ones fuzzy)
    python -m egaku.i18n init LL     a catalog for a new language (a Discord locale tag: fr, pt-BR, zh-TW...)
    python -m egaku.i18n check       what is missing: untranslated or fuzzy entries, a stale template, a
                                     translation whose {placeholders} differ from its msgid, a bad command name

Texts are found by Babel's extractor (the marks `_`, `n_`, `N_`). The commands' words are what
discord.py asks its translator for when it syncs them: the extractor builds the bot's command
tree, as `egaku doctor` does, and records every string with the msgctxt `bot.translator` uses.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from egaku.i18n.catalogs import DOMAIN, LOCALES, folder_of, tag_of

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("egaku", "bot", "agent", "tools")  # where user texts are written (the worker speaks only its wire errors)
KEYWORDS: dict[str, Any] = {"_": None, "n_": (1, 2), "N_": None}
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
PLACEHOLDER = re.compile(r"(?<!\{)\{([a-z_]+)(?:[:!][^}]*)?\}")
# Discord's rule for the names of commands and options (a choice's name may hold spaces).
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
HEADER: dict[str, Any] = {
    "copyright_holder": "the egaku authors",
    "version": "0.1.0",
    "header_comment": "# egaku's messages. English is the source: each msgid is the text as the code writes it.\n#",
}
NOTES = {
    "command": "A slash command's name: lowercase, no spaces, at most 32 characters, unique among the commands.",
    "option": "An option's name: lowercase, no spaces, at most 32 characters, unique within its command.",
    "choice": "A choice in a command's list: at most 100 characters.",
}


@dataclass(frozen=True)
class Found:
    """One string to translate: where it was found, and the msgctxt it lives under."""

    msgid: str | tuple[str, str]
    context: str | None
    where: str
    note: str | None = None


def texts(root: Path = REPO) -> Iterator[Found]:
    """The marked texts in the sources, as Babel's extractor finds them."""
    for package in SOURCES:
        for filename, _lineno, message, comments, context in extract_from_dir(
            root / package, keywords=KEYWORDS, comment_tags=("i18n:",), strip_comment_tags=True
        ):
            note = " ".join(comments) or None
            yield Found(cast("str | tuple[str, str]", message), context, f"{package}/{filename}", note)


def command_words() -> list[Found]:
    """Every string discord.py asks the translator for when it syncs the bot's commands, in order."""
    return asyncio.run(_command_words())


async def _command_words() -> list[Found]:
    from discord import Locale
    from discord.app_commands import Translator

    from bot.translator import context_of
    from egaku.doctor.discord_commands import built_bot

    found: list[Found] = []

    class Recorder(Translator):
        where = ""

        async def translate(self, string: Any, locale: Locale, context: Any) -> str | None:
            if locale is Locale.japanese:  # asked once per Discord locale: one is enough
                ctx = context_of(context.location)
                found.append(Found(string.message, ctx, self.where, NOTES.get(ctx or "")))
            return None

    recorder = Recorder()
    async with built_bot() as bot:
        for command in bot.tree.get_commands():
            recorder.where = _where(command)
            await command.get_translated_payload(bot.tree, recorder)  # type: ignore[arg-type]
    return found


def _where(command: Any) -> str:
    """The source file of a command (a group's: its first subcommand's), for translators."""
    while not hasattr(command, "callback"):
        command = next(iter(command.commands))
    path = Path(inspect.getsourcefile(command.callback) or "?").resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def template(root: Path = REPO) -> Catalog:
    """A fresh template: the sources' texts, then the commands' words."""
    catalog = Catalog(project="egaku", domain=DOMAIN, charset="utf-8", fuzzy=False, **HEADER)
    for found in [*texts(root), *command_words()]:
        known = catalog.get(found.msgid, context=found.context)
        if known is not None:
            if (found.where, 0) not in known.locations:
                known.locations.append((found.where, 0))
            continue
        notes = [found.note] if found.note else []
        catalog.add(found.msgid, locations=[(found.where, 0)], context=found.context, auto_comments=notes)
    return catalog


def keys(catalog: Catalog) -> set[tuple[str | None, str | tuple[str, ...]]]:
    """A catalog's entries as (msgctxt, msgid) pairs, the header left out."""
    return {(message.context, _msgid(message)) for message in catalog if message.id}


def _msgid(message: Message) -> str | tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, list | tuple) else message.id


def read(path: Path, locale: str | None = None) -> Catalog:
    """A .po or .pot file."""
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def write(path: Path, catalog: Catalog) -> None:
    """Write a catalog as Babel does, grouped by source file, without line numbers (they move too often)."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, sort_by_file=True, include_lineno=False, ignore_obsolete=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def catalogs(folder: Path = LOCALES) -> dict[str, Path]:
    """Each language's .po file, by Discord locale tag."""
    return {tag_of(po.parent.parent.name): po for po in sorted(folder.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))}


def extract(folder: Path = LOCALES) -> Catalog:
    """Write the template and merge it into every catalog; the template is returned."""
    fresh = template()
    path = folder / f"{DOMAIN}.pot"
    if path.exists() and keys(read(path)) == keys(fresh):
        fresh.creation_date = read(path).creation_date  # nothing new: keep the header as it was
    else:
        fresh.creation_date = datetime.now(UTC)
    write(path, fresh)
    for tag, po in catalogs(folder).items():
        catalog = read(po, folder_of(tag))
        catalog.update(fresh, update_creation_date=False)
        write(po, catalog)
    return fresh


def init(tag: str, folder: Path = LOCALES) -> Path:
    """A new, empty catalog for a language (named by its Discord locale tag)."""
    po = folder / folder_of(tag) / "LC_MESSAGES" / f"{DOMAIN}.po"
    if po.exists():
        raise SystemExit(f"{po} exists already")
    catalog = Catalog(locale=folder_of(tag), domain=DOMAIN, project="egaku", charset="utf-8", fuzzy=False, **HEADER)
    catalog.update(read(folder / f"{DOMAIN}.pot"))
    write(po, catalog)
    return po


def problems(folder: Path = LOCALES, fresh: Catalog | None = None) -> list[str]:
    """Everything that keeps the catalogs from being complete, one line each (empty when they are)."""
    fresh = fresh or template()
    path = folder / f"{DOMAIN}.pot"
    found: list[str] = []
    if not path.exists() or keys(read(path)) != keys(fresh):
        found.append(f"{path.name} is stale: run `python -m egaku.i18n extract`")
    commands = {m.id for m in fresh if m.context == "command" and isinstance(m.id, str)}
    for tag, po in catalogs(folder).items():
        catalog = read(po, folder_of(tag))
        for message in fresh:
            if not message.id:
                continue
            entry = catalog.get(message.id, message.context)
            found.extend(f"{tag}: {line}" for line in entry_problems(entry, message))
            if entry is not None and not entry.context:
                found.extend(f"{tag}: {line}" for line in command_mentions(entry, catalog, commands))
    return found


def command_mentions(entry: Message, catalog: Catalog, commands: set[str]) -> list[str]:
    """A text that names a slash command (`/imagine`) names it as the catalog's language does (`/描く`)."""
    ids = entry.id if isinstance(entry.id, list | tuple) else [entry.id]
    named = {name for text in ids for name in re.findall(r"(?<![\w<])/([a-z_]+)", text) if name in commands}
    wrong: list[str] = []
    for name in sorted(named):
        local = catalog.get(name, context="command")
        spelled = local.string if local is not None and local.string else name
        strings = entry.string if isinstance(entry.string, list | tuple) else [entry.string]
        wrong += [f"{_msgid(entry)!r}: {s!r} names /{name} otherwise than /{spelled}" for s in strings
                  if s and f"/{spelled}" not in s]  # fmt: skip
    return wrong


def entry_problems(entry: Message | None, wanted: Message) -> list[str]:
    """What is wrong with one catalog's entry for a template message."""
    name = f"{wanted.context + ' ' if wanted.context else ''}{_msgid(wanted)!r}"
    if entry is None:
        return [f"{name} is missing"]
    strings = [s or "" for s in (entry.string if isinstance(entry.string, list | tuple) else [entry.string])]
    if entry.fuzzy or not all(strings):
        return [f"{name} is {'fuzzy' if entry.fuzzy else 'untranslated'}"]
    ids = list(wanted.id) if isinstance(wanted.id, list | tuple) else [wanted.id]
    wanted_names = set().union(*(PLACEHOLDER.findall(i) for i in ids)) - {"count"}
    wrong = [f"{name}: {s!r} has the placeholders {sorted(set(PLACEHOLDER.findall(s)))}" for s in strings
             if set(PLACEHOLDER.findall(s)) - {"count"} != wanted_names]  # fmt: skip
    if wanted.context in ("command", "option"):
        wrong += [
            f"{name}: {s!r} is not a Discord name" for s in strings if not COMMAND_NAME.match(s) or s != s.lower()
        ]
    return wrong


def main(argv: list[str]) -> int:
    """`python -m egaku.i18n extract | init LL | check`."""
    logging.basicConfig(level=logging.WARNING)
    if argv[:1] == ["extract"]:
        fresh = extract()
        print(f"{TEMPLATE.relative_to(REPO)}: {len(keys(fresh))} entries; merged into {', '.join(catalogs())}")
        return 0
    if argv[:1] == ["init"] and len(argv) == 2:
        print(f"created {init(argv[1]).relative_to(REPO)}: translate it, then `python -m egaku.i18n check`")
        return 0
    if argv[:1] == ["check"]:
        found = problems()
        print("\n".join(found) or "every catalog is complete")
        return 1 if found else 0
    print(__doc__)
    return 2
