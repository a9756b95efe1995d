"""Who may use the worker: the bearer token, and the rule that an untokened worker stays on loopback."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from worker.errors import Unauthorized
from worker.settings import WorkerSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Image links carry their own signature: a browser or a chat client fetches them without the token.
PUBLIC_PATHS = ("/healthz", "/metrics")
PUBLIC_PREFIXES = ("/v1/images/files/",)


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_public(path: str) -> bool:
    """Routes served without the bearer token."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def bearer_guard(token: str | None) -> Any:  # an aiohttp middleware
    """Middleware: every route but the public ones needs `Authorization: Bearer <token>` when a token is set."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and not is_public(request.path):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise Unauthorized("missing or wrong bearer token")
        return await handler(request)

    return guard


def check_exposure(settings: WorkerSettings, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if not is_loopback(settings.host) and not token:
        raise SystemExit(
            f"refusing to bind the worker to {settings.host} without a token: "
            "set [worker] token_env and that environment variable"
        )
