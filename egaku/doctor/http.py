"""One HTTP call of a check, answered as a typed value: a status and a body, or why there was no answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TEXT_CAP = 2000  # characters of a body kept for messages


@dataclass(frozen=True)
class Answer:
    """A server's answer (status > 0), or the reason none came (`problem`, status 0)."""

    status: int = 0
    body: Any = None  # the parsed JSON, or None when the body was not JSON
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    problem: str = ""

    @property
    def answered(self) -> bool:
        """Whether a server answered at all."""
        return self.status > 0

    def server_message(self) -> str:
        """The error text a server put in its body (OpenAI's, Discord's or Ollama's shape), cut short."""
        body = self.body
        text = ""
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                text = str(error.get("message") or "")
            elif isinstance(error, str):
                text = error
            text = text or str(body.get("message") or body.get("detail") or "")
        text = " ".join((text or self.text).split())
        return text[:200] + ("…" if len(text) > 200 else "")


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout_s: float | None = None,
) -> Answer:
    """Send one request; never raises for network trouble (that becomes `problem`)."""
    timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s is not None else None
    try:
        async with session.request(method, url, headers=headers, json=body, timeout=timeout) as resp:
            raw = await resp.text(errors="replace")
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return Answer(resp.status, parsed, raw[:TEXT_CAP], dict(resp.headers))
    except aiohttp.InvalidURL:
        return Answer(problem="it is not a valid URL")
    except aiohttp.ClientConnectorError as exc:
        return Answer(problem=f"cannot connect ({_reason(exc)})")
    except TimeoutError:
        return Answer(problem=f"no answer within {timeout_s or session.timeout.total:g} s")
    except asyncio.CancelledError:
        raise
    except aiohttp.ClientError as exc:
        return Answer(problem=f"the connection failed ({type(exc).__name__})")


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    os_error = exc.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused: nothing listens there"
    return os_error.strerror or type(os_error).__name__ if os_error else type(exc).__name__
