"""What the bot asks of an image backend: an egaku worker (`WorkerClient`) or OpenAI's API (`OpenAIImages`)."""

from __future__ import annotations

from typing import Protocol

from tools.context import ImageBackend


class ImageWorker(ImageBackend, Protocol):
    """An ImageBackend that can also cancel jobs and describe pictures (the bot's buttons and /describe)."""

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when the backend no longer has it (or cannot cancel)."""
        ...

    async def describe(self, image: bytes) -> str:
        """An English prompt for a picture."""
        ...
