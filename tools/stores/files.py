"""Writing files safely: once, atomically (a temp file renamed into place)."""

from __future__ import annotations

import secrets
from pathlib import Path


def write_once(path: Path, data: bytes) -> Path:
    """Write data to path unless it exists (content-addressed files never change); never half-written."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
