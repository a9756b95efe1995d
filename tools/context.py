"""What a tool receives from the agent for one turn (LangGraph runtime context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tools.types import RenderedImage
from worker.protocol import GenerationRequest


class ImageBackend(Protocol):
    """Anything that renders a GenerationRequest: the worker client, or a fake."""

    async def generate(self, request: GenerationRequest, user_words: str) -> list[RenderedImage]:
        """Render request; raise an EgakuError on failure."""
        ...


@dataclass
class TurnContext:
    """Dependencies and per-turn sinks for the tools.

    Images go into `images` rather than into the model's context; failures go
    into `failures` so that the bot can tell the user with a fixed message.
    """

    backend: ImageBackend
    user_id: str
    user_words: str
    model: str | None = None
    images: list[RenderedImage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
