"""Makes any non-loopback network connection fail, in tests and their subprocesses."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_ALLOWED_NAMES = {"localhost", "127.0.0.1", "::1", ""}


class NonLoopbackConnection(OSError):
    """A test tried to reach beyond this machine."""


def _check(address: Any) -> None:
    if not isinstance(address, tuple):
        return  # AF_UNIX paths
    host = str(address[0])
    if host in _ALLOWED_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise NonLoopbackConnection(f"tests may not connect to {host!r}")


def install() -> None:
    """Patch socket connect and DNS so that only loopback is reachable."""
    if getattr(socket, "_egaku_guarded", False):
        return
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        _check(address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(address)
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name not in _ALLOWED_NAMES:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                raise NonLoopbackConnection(f"tests may not resolve {name!r}") from None
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket._egaku_guarded = True  # type: ignore[attr-defined]
