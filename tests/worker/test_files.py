"""Images behind signed links: valid until they expire, unforgeable, swept, and gone at shutdown."""

from __future__ import annotations

from pathlib import Path

from worker.files import ImageStore


def test_links_are_signed_expire_and_are_cleaned_up(tmp_path: Path) -> None:
    now = [1000.0]
    store = ImageStore(60, clock=lambda: now[0], root=tmp_path / "links")
    kept = store.put(b"png-bytes", "png")
    url = store.link("http://w:7861/", kept)
    assert url == f"http://w:7861/v1/images/files/{kept.name}?expires=1060&sig={store.signature(kept.name, 1060)}"
    sig = store.signature(kept.name, 1060)
    assert store.open(kept.name, "1060", sig) == kept.path
    assert store.open(kept.name, "9999", sig) is None  # a longer life is not the signed one
    assert store.open(kept.name, "1060", "0" * 64) is None
    assert store.open("../etc/passwd", "1060", sig) is None
    other = ImageStore(60, clock=lambda: now[0], root=tmp_path / "other")
    assert other.open(kept.name, "1060", other.signature(kept.name, 1060)) is None  # another process's key
    now[0] = 1061.0
    assert store.open(kept.name, "1060", sig) is None
    assert store.sweep() == 1 and store.files == []
    store.put(b"x", "webp")
    store.close()
    assert not (tmp_path / "links").exists()


def test_an_odd_expiry_is_a_plain_no_not_a_crash(tmp_path: Path) -> None:
    store = ImageStore(60, clock=lambda: 1000.0, root=tmp_path / "links")
    kept = store.put(b"png-bytes", "png")
    sig = store.signature(kept.name, 1060)
    for expires in ("²", "1060²", "٣", "9" * 5000, "", "-1", "1e3", " 1060"):
        assert store.open(kept.name, expires, sig) is None, expires
    store.close()
