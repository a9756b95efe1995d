"""No fixed user text bypasses the catalogs: every sentence in the modules that talk to users is marked.

The scan reads the sources that write to users (the bot, the error tree, the checks on uploads and
caps) and finds every string literal that reads as words for a person: two words or
more, a capitalised word, or a sentence's end. Each must be inside a mark (`_`, `n_`, `N_`), or
somewhere no user reads it: a docstring, a log call, an exception's own message (the log's), a
`where` argument (the log's), a slash command's decorator (the words discord.py hands the
translator: tests/bot/test_localized_commands.py checks those), a regular expression or a mapping
key. A module-level constant counts as marked when every use of it is in such a place.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
# The modules that write what users read.
SCANNED = [
    *sorted((REPO / "bot").rglob("*.py")),
    REPO / "egaku/errors.py",
    REPO / "tools/checks/limits.py",
    REPO / "tools/checks/uploads.py",
]
# Elsewhere in tools/, what users read is typed: a `Refused` carries a `Text`, and so does every error
# whose text is chosen where it is raised (`TooBusy`, `BadUpload`, `EditNotPossible`...): mypy checks those.
MARKS = {"_", "n_", "N_"}
LOGGERS = {"log", "logger", "logging", "warnings"}
# Functions whose strings no user reads: the log's (an exception as a log line may carry it), and the words a
# drawing model is given (/blend's description when the user writes none).
LOG_FUNCTIONS = {"safe_detail", "blend_prompt"}
# Keyword arguments that are data, not a fixed text: the picture's prompt as the history keeps it.
DATA = {"prompt", "user_words"}
WORD = re.compile(r"[A-Za-z]{2,}")
CAPITALISED = re.compile(r"(?<![A-Za-z_/.-])[A-Z][a-z]+")


def reads_as_words(text: str) -> bool:
    """Two words or more, a capitalised word, or the end of a sentence."""
    words = WORD.findall(text)
    if not words:
        return False
    sentence_end = text.rstrip().endswith((".", "!", "?", "…")) and len(text.strip()) > 1
    return (len(words) >= 2 and " " in text) or bool(CAPITALISED.search(text)) or sentence_end


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _root(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


class Scan:
    """One module's parse tree, its parents, and what its names stand for."""

    def __init__(self, where: str, source: str, names: dict[str, Any]) -> None:
        self.where = where
        self.tree = ast.parse(source)
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.globals = names

    @classmethod
    def of(cls, path: Path) -> Scan:
        """A module of the project (imported, so that its names can be looked up)."""
        module = importlib.import_module(".".join(path.relative_to(REPO).with_suffix("").parts))
        return cls(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"), vars(module))

    def ancestors(self, node: ast.AST) -> Iterator[tuple[ast.AST, ast.AST]]:
        """(parent, child) pairs from the node up to the module."""
        while node in self.parents:
            parent = self.parents[node]
            yield parent, node
            node = parent

    def unread(self, node: ast.AST) -> bool:
        """Whether no user reads a string at this place."""
        for parent, child in self.ancestors(node):
            if isinstance(parent, ast.Call) and child is not parent.func and self.call_unread(parent, child):
                return True
            if isinstance(parent, ast.Raise | ast.Subscript | ast.Compare):
                return True
            decorated = isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if decorated and (child in parent.decorator_list or child in getattr(parent, "keywords", [])):
                return True
            if isinstance(parent, ast.keyword) and parent.arg in ("template", *DATA):
                return True
            if isinstance(parent, ast.FunctionDef) and parent.name in LOG_FUNCTIONS:
                return True
            if isinstance(parent, ast.Dict) and child in parent.keys:
                return True
        return False

    def call_unread(self, call: ast.Call, child: ast.AST) -> bool:
        """A string argument of a call that no user reads: a mark's, a log's, an exception's, `where`, a regex."""
        name = _name(call.func)
        if name in MARKS or _root(call.func) in LOGGERS or _root(call.func) in ("re", "super"):
            return True
        if name in ("get", "pop", "setdefault", "Group", "Choice", "locale_str"):
            return True
        target = self.globals.get(name) or self.globals.get(_root(call.func))
        if isinstance(target, type) and issubclass(target, BaseException):
            return True  # an exception's own message: the log's
        if callable(target) and not isinstance(target, type):
            try:
                bound = inspect.signature(target).bind_partial(
                    *call.args, **{k.arg: k.value for k in call.keywords if k.arg}
                )
            except (TypeError, ValueError):
                return False
            return any(arg is child and param == "where" for param, arg in bound.arguments.items())
        return False

    def docstrings(self) -> set[ast.AST]:
        """The docstring constants of the module, its classes and functions."""
        found: set[ast.AST] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    found.add(first.value)
        return found

    def constant_unread(self, node: ast.AST) -> bool:
        """A module-level constant every use of which is a place no user reads (a log line's text, say)."""
        for parent, _child in self.ancestors(node):
            if isinstance(parent, ast.Assign) and self.parents.get(parent) is self.tree:
                names = [t.id for t in parent.targets if isinstance(t, ast.Name)]
                uses = [n for n in ast.walk(self.tree) if isinstance(n, ast.Name) and n.id in names
                        and isinstance(n.ctx, ast.Load)]  # fmt: skip
                return bool(uses) and all(self.unread(use) for use in uses)
        return False

    def bypasses(self) -> Iterator[str]:
        """Each string literal users could read that is not marked, as `path:line: text`."""
        docstrings = self.docstrings()
        for node in ast.walk(self.tree):
            text = literal(node)
            if text is None or node in docstrings or isinstance(self.parents.get(node), ast.JoinedStr):
                continue
            if reads_as_words(text) and not self.unread(node) and not self.constant_unread(node):
                yield f"{self.where}:{node.lineno}: {text!r}"


def literal(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's with `{}` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


SAMPLE = """
import logging

log = logging.getLogger(__name__)
LOGGED = "could not sync the commands"
SHOWN = "Only the owner can do that."


def _(msgid, **values):
    return msgid


def report(error, where):
    return where


async def press(interaction):
    \"\"\"A docstring, never shown.\"\"\"
    log.warning("a log line with words")
    log.warning(LOGGED)
    report(None, "button reroll")
    await interaction.response.send_message("Cancelled.")
    await interaction.response.send_message(_("Cancelled."))
    await interaction.response.send_message(f"seed {interaction.id} · done")
    await interaction.response.send_message(SHOWN)
    raise ValueError("an exception's message")
"""


def test_the_scan_finds_unmarked_words_and_only_those() -> None:
    assert reads_as_words("Cancel") and reads_as_words("seed {seed} · steps") and reads_as_words("Done.")
    assert not any(reads_as_words(s) for s in ("reroll", "egaku:cancel:", "image/png", "%Y-%m-%d", "—", "U", "3d"))
    names: dict[str, Any] = {}
    exec(compile(SAMPLE, "sample", "exec"), names)
    assert list(Scan("sample", SAMPLE, names).bypasses()) == [
        "sample:6: 'Only the owner can do that.'",
        "sample:22: 'Cancelled.'",
        "sample:24: 'seed {} · done'",
    ]


def test_no_fixed_user_text_bypasses_the_catalogs() -> None:
    found = [line for path in SCANNED for line in Scan.of(path).bypasses()]
    assert found == []
