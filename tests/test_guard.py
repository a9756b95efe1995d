"""The loopback guard itself: a test that reaches beyond this machine fails."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from loopback import NonLoopbackConnection


def test_non_loopback_connect_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(NonLoopbackConnection):
        sock.connect(("10.255.255.1", 443))


def test_dns_for_public_names_is_refused() -> None:
    with pytest.raises(NonLoopbackConnection):
        socket.getaddrinfo("discord.com", 443)


async def test_http_clients_cannot_leave_the_machine() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ClientError, NonLoopbackConnection)):
            await session.get("https://discord.com/api/v10/users/@me")
