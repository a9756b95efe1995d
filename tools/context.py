"""What a tool receives from the agent for one turn (LangGraph runtime context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tools.types import RenderedImage
from worker.protocol import EditRequest, GenerationRequest

if TYPE_CHECKING:
    from tools.history import History
    from tools.limits import JobLimiter


class ImageBackend(Protocol):
    """Anything that renders requests: the worker client, or a fake."""

    async def generate(self, request: GenerationRequest, user_words: str) -> list[RenderedImage]:
        """Render request; raise an EgakuError on failure."""
        ...

    async def edit(
        self, request: EditRequest, image: bytes, user_words: str, mask: bytes | None = None
    ) -> list[RenderedImage]:
        """Edit an image; raise an EgakuError on failure."""
        ...


@dataclass(frozen=True)
class ImageOptions:
    """What a user chose explicitly (e.g. /imagine's options); these win over the model's choices."""

    negative_prompt: str | None = None
    aspect: str | None = None
    seed: int | None = None
    style: str | None = None
    count: int | None = None
    model: str | None = None

    def apply(self, fields: dict[str, object]) -> dict[str, object]:
        """Request fields with the user's explicit choices laid over them."""
        chosen = {
            "negative_prompt": self.negative_prompt,
            "aspect": self.aspect,
            "seed": self.seed,
            "style": self.style,
            "n": self.count,
            "model": self.model,
        }
        return {**fields, **{k: v for k, v in chosen.items() if v is not None}}


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
    history: History | None = None
    conversation: str = ""
    guild_id: str | None = None
    channel_id: str | None = None
    source_id: str | None = None  # the Discord message or interaction this turn answers
    reply_to: str | None = None  # the Discord message the user replied to
    instruct_model: str | None = None  # a worker preset that does instruction edits, if any
    options: ImageOptions = field(default_factory=ImageOptions)
    limiter: JobLimiter | None = None
    images: list[RenderedImage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
