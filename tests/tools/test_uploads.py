"""Uploads: Discord attachments only, byte caps before and while reading, no redirects."""

from __future__ import annotations

import io

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from egaku.errors import BadUpload
from tests.conftest import serve
from tools.checks.uploads import allowed, check_image, fetch_attachment


def test_only_discords_cdn_or_the_configured_server() -> None:
    assert allowed("https://cdn.discordapp.com/attachments/1/2/a.png", frozenset())
    assert allowed("https://media.discordapp.net/attachments/1/2/a.png", frozenset())
    assert not allowed("http://cdn.discordapp.com/attachments/1/2/a.png", frozenset())  # https only
    assert not allowed("https://evil.example/a.png", frozenset())
    assert not allowed("http://169.254.169.254/latest/meta-data", frozenset())
    assert allowed("http://127.0.0.1:5/attachments/1/a.png", frozenset({"127.0.0.1"}))


async def test_caps_and_redirects() -> None:
    async def big(_request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 3000)

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.0.0.1/secret.png")

    app = web.Application()
    app.router.add_get("/big.png", big)
    app.router.add_get("/moved.png", redirect)
    runner, url = await serve(app)
    hosts = frozenset({"127.0.0.1"})
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(BadUpload, match="too big"):
                await fetch_attachment(session, url + "/big.png", 10**9, "big.png", extra_hosts=hosts)
            with pytest.raises(BadUpload, match="too big"):  # the declared size lied
                await fetch_attachment(session, url + "/big.png", 10, "big.png", extra_hosts=hosts, max_bytes=1000)
            with pytest.raises(BadUpload, match="couldn't download"):
                await fetch_attachment(session, url + "/moved.png", 10, "moved.png", extra_hosts=hosts)
            with pytest.raises(BadUpload, match="only read images attached to Discord"):
                await fetch_attachment(session, "https://example.com/a.png", 10, "a.png")
    finally:
        await runner.cleanup()


def test_a_spoofed_type_and_metadata() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(buffer, format="JPEG", exif=b"Exif\x00\x00GPS-secret")
    upload = check_image(buffer.getvalue(), "photo.png")  # named .png, really a JPEG: decoded by content
    clean = Image.open(io.BytesIO(upload.png))
    assert (clean.format, clean.size, upload.width) == ("PNG", (40, 30), 40)
    assert b"GPS-secret" not in upload.png
    with pytest.raises(BadUpload):
        check_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.png")
