"""What a tool receives from the agent for one turn (LangGraph runtime context)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tools.types import RenderedImage
from worker.protocol import EditRequest, GenerationRequest, ProgressEvent

if TYPE_CHECKING:
    from tools.history import History
    from tools.limits import JobLimiter


ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]


class ImageBackend(Protocol):
    """Anything that renders requests: the worker client, or a fake."""

    async def generate(
        self, request: GenerationRequest, user_words: str, on_progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """Render request; raise an EgakuError on failure."""
        ...

    async def edit(
        self,
        request: EditRequest,
        image: bytes,
        user_words: str,
        mask: bytes | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> list[RenderedImage]:
        """Edit an image; raise an EgakuError on failure."""
        ...


class JobWatch(Protocol):
    """Follows a job while the GPU works on it (the bot shows a status message with a cancel button)."""

    async def started(self, job_id: str) -> None:
        """The job was sent to the worker."""
        ...

    async def progress(self, job_id: str, event: ProgressEvent) -> None:
        """Queue position, step, ETA or a preview arrived."""
        ...

    async def finished(self, job_id: str) -> None:
        """The job ended (done, failed or cancelled)."""
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
    watch: JobWatch | None = None
    blocklist: tuple[str, ...] = ()  # applied to final prompts; empty in channels marked NSFW
    guild_cap: int | None = None  # the server's own cap on images in flight (/settings server)
    safety_check: bool = False  # ask the worker's safety checker to look at the outputs
    history_note: str = ""  # the user's images here, as the model sees them (set once per turn)
    images: list[RenderedImage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
