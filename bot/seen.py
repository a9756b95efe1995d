"""Keys seen recently (interaction ids, presses in flight), so that a replay does nothing twice."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator


class SeenOnce:
    """Remembers recent keys (interaction ids, presses in flight) so that a replay does nothing twice."""

    def __init__(self, size: int = 4096) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, key: str) -> bool:
        """True the first time a key is seen; False for a replay."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True

    def forget(self, key: str) -> None:
        """Allow a key again (a press that finished)."""
        self._keys.pop(key, None)

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[bool]:
        """Whether this is the only press under `key` now (False: one is in flight); the key is free again after."""
        if not self.first_time(key):
            yield False
            return
        try:
            yield True
        finally:
            self.forget(key)
