"""The doctor's report: text for people, JSON for scripts, the exit code, and secrets masked."""

from __future__ import annotations

import json

from egaku.doctor.findings import Finding, Report

REPORT = Report(
    "config.toml",
    (
        Finding("config", "ok", "config.toml is valid."),
        Finding("discord.token", "fail", "Discord refused the token in DISCORD_TOKEN.", "Reset it."),
        Finding("disk", "warn", "3.0 GiB free.", "Free some space."),
        Finding("llm.tools", "skip", "Not checked."),
    ),
)


def test_text() -> None:
    assert REPORT.text() == (
        "egaku doctor: config.toml\n"
        "\n"
        "ok    config         config.toml is valid.\n"
        "FAIL  discord.token  Discord refused the token in DISCORD_TOKEN.\n"
        "                     fix: Reset it.\n"
        "warn  disk           3.0 GiB free.\n"
        "                     fix: Free some space.\n"
        "skip  llm.tools      Not checked.\n"
        "\n"
        "1 problem and 1 warning.\n"
    )
    assert Report("c", (Finding("config", "ok", "fine"),)).text().endswith("\nEverything checked is in order.\n")


def test_json_and_exit_code() -> None:
    body = json.loads(REPORT.json())
    assert body["config"] == "config.toml" and body["ok"] is False
    assert body["findings"][1] == {
        "check": "discord.token",
        "status": "fail",
        "message": "Discord refused the token in DISCORD_TOKEN.",
        "fix": "Reset it.",
    }
    assert REPORT.exit_code == 1
    warned_only = Report("c", (Finding("disk", "warn", "low", "free some"), Finding("x", "skip", "no")))
    assert warned_only.exit_code == 0


def test_secrets_are_masked_wherever_a_server_echoed_them() -> None:
    report = Report(
        "/etc/egaku/config.toml",
        (Finding("llm.answer", "fail", "401: bad key sk-planted-0123456789", "Replace sk-planted-0123456789."),),
    )
    masked = report.masked(["sk-planted-0123456789", None, "short"])
    assert masked.findings == (Finding("llm.answer", "fail", "401: bad key ***", "Replace ***."),)
    # Too short to be a secret: left alone rather than garbling every message.
    assert Report("c", (Finding("x", "ok", "a short word"),)).masked(["short"]).findings[0].message == "a short word"
