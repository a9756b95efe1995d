"""The upscaler behind the plain upscale buttons: whether the backend has one (asked now and then), and its result.

The buttons' labels say whether "Upscale 2×" is the upscaler or the creative upscale standing in for it,
and a post asks at most once a minute: the answer is the backend's own (the worker's /healthz), cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from egaku.errors import Failure, safe_detail
from tools.backends.base import ImageBackend, Upscaled
from tools.pictures import RenderedImage, as_rendered
from tools.stores.history import Generation

log = logging.getLogger(__name__)

UPSCALER_TTL_S = 60.0  # an operator who adds an upscaler sees the labels change within a minute


class UpscalerCheck:
    """The backend's upscaler by name (None: none), asked at most once per `ttl_s`."""

    def __init__(
        self, backend: ImageBackend, ttl_s: float = UPSCALER_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._backend = backend
        self._ttl_s = ttl_s
        self._clock = clock
        self._name: str | None = None
        self._asked_at: float | None = None

    async def name(self) -> str | None:
        """The upscaler's name; the last answer while it is fresh, or when the backend cannot be asked now."""
        now = self._clock()
        if self._asked_at is not None and now - self._asked_at < self._ttl_s:
            return self._name
        # Asked or not, the next question waits a while: an unreachable worker is not asked on every post.
        self._asked_at = now
        try:
            self._name = await self._backend.upscaler()
        except Failure as exc:
            log.warning("could not ask the image service for its upscaler: %s", safe_detail(exc))
        return self._name


def upscaled(parent: Generation, done: Upscaled) -> RenderedImage:
    """The enlarged picture: the parent's prompt, seed and preset (later edits draw with it), at its new size."""
    return as_rendered(parent, done.png, width=done.width, height=done.height)
