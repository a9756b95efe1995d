"""Who may use the worker: the bearer token, the rule that an untokened worker stays on loopback, and no browsers.

A worker on loopback without a token would otherwise serve any web page its user opens:
a page can POST `text/plain` or multipart forms without a CORS preflight, and read the
answers after DNS rebinding (its own name, resolving to 127.0.0.1). So every route that
does work refuses, with a 403, a request that carries an `Origin` header or says it is
cross-site (`Sec-Fetch-Site`), and JSON routes take `application/json` bodies only. A
worker without a token also refuses a `Host` that is not one of its own names. Image links
stay open: a chat client or a browser fetches them, and their signature is the key.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from worker.errors import Forbidden, Unauthorized
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


LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
JSON_ROUTES = ("/v1/images/generations",)


def host_name(host_header: str) -> str:
    """The name part of a Host header ("127.0.0.1:7861" -> "127.0.0.1", "[::1]:80" -> "::1"), lower-cased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def own_names(settings: WorkerSettings) -> frozenset[str]:
    """The names a request may reach this worker by."""
    return LOCAL_NAMES | {settings.host.lower(), *(name.lower() for name in settings.allowed_hosts)}


def is_own_host(request: web.Request, settings: WorkerSettings) -> bool:
    """Whether the request's Host is one of this worker's names."""
    return host_name(request.headers.get("Host", "")) in own_names(settings)


def browser_guard(settings: WorkerSettings, token: str | None) -> Any:  # an aiohttp middleware
    """Middleware: refuse what only a web page would send to a worker (see the module's docstring)."""
    check_host = token is None or bool(settings.allowed_hosts)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        if check_host and not is_own_host(request, settings):
            raise Forbidden("this worker does not answer to that Host name; add it to [worker] allowed_hosts")
        if "Origin" in request.headers or request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
            raise Forbidden("this worker does not serve web pages' requests")
        if request.method == "POST" and request.path in JSON_ROUTES and request.content_type != "application/json":
            raise Forbidden("send the request as application/json")
        return await handler(request)

    return guard


def check_exposure(settings: WorkerSettings, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if not is_loopback(settings.host) and not token:
        raise SystemExit(
            f"refusing to bind the worker to {settings.host} without a token: "
            "set [worker] token_env and that environment variable"
        )
