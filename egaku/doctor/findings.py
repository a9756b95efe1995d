"""What `egaku doctor` finds: one typed verdict per check, printed as text or JSON, secrets masked."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Literal

Status = Literal["ok", "warn", "fail", "skip"]

# A secret shorter than this is not masked: masking "x" would garble every message, and no real
# token, key or password is that short.
MIN_SECRET_LENGTH = 8
MASK = "***"

_LABELS: dict[Status, str] = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class Finding:
    """One check's verdict in plain words, and what to do about it (empty when nothing is to be done)."""

    check: str  # a stable name: "discord.token", "llm.tools", "gpu.flux-dev"...
    status: Status
    message: str
    fix: str = ""


def ok(check: str, message: str) -> Finding:
    """A passing check."""
    return Finding(check, "ok", message)


def warn(check: str, message: str, fix: str) -> Finding:
    """Works, but not as configured or not for long."""
    return Finding(check, "warn", message, fix)


def fail(check: str, message: str, fix: str) -> Finding:
    """Broken: egaku will not work as configured."""
    return Finding(check, "fail", message, fix)


def skip(check: str, message: str) -> Finding:
    """Not checked, and why."""
    return Finding(check, "skip", message)


@dataclass(frozen=True)
class Report:
    """Every finding of one run, in the order the checks ran."""

    config: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """No check failed (warnings and skips do not count)."""
        return not any(f.status == "fail" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1: scripts can use it."""
        return 0 if self.ok else 1

    def masked(self, secrets: Iterable[str | None]) -> Report:
        """The same report with every secret's text replaced by ***, wherever a server echoed it."""
        values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

        def clean(text: str) -> str:
            for value in values:
                text = text.replace(value, MASK)
            return text

        cleaned = tuple(replace(f, message=clean(f.message), fix=clean(f.fix)) for f in self.findings)
        return Report(clean(self.config), cleaned)

    def text(self) -> str:
        """For people: one line per finding, its fix under it, and a summary."""
        width = max((len(f.check) for f in self.findings), default=0)
        lines = [f"egaku doctor: {self.config}", ""]
        for f in self.findings:
            lines.append(f"{_LABELS[f.status]:<4}  {f.check:<{width}}  {f.message}")
            if f.fix:
                lines.append(f"{'':<4}  {'':<{width}}  fix: {f.fix}")
        failed = sum(f.status == "fail" for f in self.findings)
        warned = sum(f.status == "warn" for f in self.findings)
        lines += ["", _summary(failed, warned)]
        return "\n".join(lines) + "\n"

    def json(self) -> str:
        """For scripts: {"config", "ok", "findings": [{"check", "status", "message", "fix"}]}."""
        body = {"config": self.config, "ok": self.ok, "findings": [asdict(f) for f in self.findings]}
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def _summary(failed: int, warned: int) -> str:
    if not failed and not warned:
        return "Everything checked is in order."
    parts = [f"{failed} problem{'s' * (failed != 1)}"] if failed else []
    parts += [f"{warned} warning{'s' * (warned != 1)}"] if warned else []
    return " and ".join(parts) + "."
