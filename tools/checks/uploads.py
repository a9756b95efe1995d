"""Images users attach: fetched from Discord only, with byte and pixel caps, re-encoded clean."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from egaku.errors import BadUpload
from egaku.i18n import _
from worker.errors import BadRequest
from worker.images import MAX_UPLOAD_BYTES, encode_image, read_image

DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
MAX_UPLOAD_PIXELS = 4096 * 4096
COULD_NOT_DOWNLOAD = _("I couldn't download that attachment. Please try again.")


@dataclass(frozen=True)
class Upload:
    """A checked attachment, re-encoded as PNG without metadata."""

    png: bytes
    width: int
    height: int
    filename: str


def allowed(url: str, extra_hosts: frozenset[str]) -> bool:
    """Discord's CDN over https, or the configured Discord-compatible server's own host."""
    parts = urlsplit(url)
    if parts.hostname in DISCORD_CDN_HOSTS:
        return parts.scheme == "https"
    return parts.hostname in extra_hosts and parts.scheme in ("https", "http")


async def fetch_attachment(
    session: aiohttp.ClientSession,
    url: str,
    declared_size: int,
    filename: str,
    *,
    extra_hosts: frozenset[str] = frozenset(),
    max_bytes: int = MAX_UPLOAD_BYTES,
    timeout_s: float = 20.0,
) -> Upload:
    """Download and check one attachment. Never follows links to other hosts."""
    if not allowed(url, extra_hosts):
        raise BadUpload(_("I can only read images attached to Discord messages."))
    if declared_size > max_bytes:
        raise BadUpload(
            _(
                "That file is too big for me ({size} MB; the limit is {limit} MB).",
                size=declared_size // 1_048_576,
                limit=max_bytes // 1_048_576,
            )
        )
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s), allow_redirects=False) as resp:
            if resp.status != 200:
                raise BadUpload(COULD_NOT_DOWNLOAD)
            data = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                data += chunk
                if len(data) > max_bytes:
                    raise BadUpload(_("That file is too big for me."))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BadUpload(COULD_NOT_DOWNLOAD) from exc
    return await asyncio.to_thread(check_image, bytes(data), filename)


def check_image(data: bytes, filename: str, max_pixels: int = MAX_UPLOAD_PIXELS) -> Upload:
    """Decode with explicit formats and a pixel cap read before decoding; re-encode from pixels."""
    try:
        image = read_image(data, max_pixels=max_pixels)
    except BadRequest as exc:
        raise BadUpload(_("I couldn't use that image: {reason}.", reason=exc.message)) from exc
    buffer = io.BytesIO(encode_image(image, "png"))
    return Upload(png=buffer.getvalue(), width=image.width, height=image.height, filename=filename)
