"""Images served by URL (`response_format="url"`): short-lived, signed, cleaned up. Torch-free.

A link carries its expiry and an HMAC of (name, expiry) under a key that lives only
in this process, so it needs no bearer token, cannot be forged or extended, and dies
with the worker. Files are swept once expired, and all of them at shutdown.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
_NAME = re.compile(r"^[0-9a-f]{32}\.(png|webp|jpeg)$")
_EXPIRES = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class StoredImage:
    """A file behind a link: its name, where it is, and when the link dies."""

    name: str
    path: Path
    expires: int


class ImageStore:
    """A private temporary folder of images, each reachable through a signed, expiring link."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time, root: Path | None = None) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._root = root or Path(tempfile.mkdtemp(prefix="egaku-images-"))
        self._root.mkdir(parents=True, exist_ok=True)
        self._expiry: dict[str, int] = {}

    def put(self, data: bytes, fmt: str) -> StoredImage:
        """Write one image (blocking: call it off the event loop); its link lives ttl_s."""
        name = f"{secrets.token_hex(16)}.{fmt}"
        path = self._root / name
        path.write_bytes(data)
        expires = int(self._clock() + self._ttl_s)
        self._expiry[name] = expires
        return StoredImage(name=name, path=path, expires=expires)

    def signature(self, name: str, expires: int) -> str:
        """The HMAC that makes a link valid."""
        return hmac.new(self._key, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, base_url: str, image: StoredImage) -> str:
        """The URL a client fetches without a token."""
        sig = self.signature(image.name, image.expires)
        return f"{base_url.rstrip('/')}/v1/images/files/{image.name}?expires={image.expires}&sig={sig}"

    def open(self, name: str, expires: str, sig: str) -> Path | None:
        """The file behind a link, or None when the link is forged, expired or swept."""
        # ASCII digits only, and few of them: "²" passes isdigit() and a 5000-digit number
        # is past int()'s limit; either must be a plain "no such link", never a 500.
        if not _NAME.match(name) or not _EXPIRES.fullmatch(expires):
            return None
        if not hmac.compare_digest(self.signature(name, int(expires)), sig):
            return None
        if int(expires) < self._clock():
            return None
        path = self._root / name
        return path if path.is_file() else None

    def sweep(self) -> int:
        """Delete the files whose links have expired (blocking); how many were deleted."""
        now = self._clock()
        gone = [name for name, expires in self._expiry.items() if expires < now]
        for name in gone:
            (self._root / name).unlink(missing_ok=True)
            del self._expiry[name]
        if gone:
            log.info("swept %d expired image link(s)", len(gone))
        return len(gone)

    def close(self) -> None:
        """Delete every file (the links die with the process's key anyway)."""
        shutil.rmtree(self._root, ignore_errors=True)
        self._expiry.clear()

    @property
    def files(self) -> list[str]:
        """The names of the files kept now."""
        return sorted(p.name for p in self._root.iterdir())
