"""What a tool receives from the agent for one turn (LangGraph runtime context)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tools.types import RenderedImage
from worker.protocol import EditRequest, GenerationRequest, ProgressEvent

if TYPE_CHECKING:
    from tools.service import ImageService


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
    best_of: int | None = None

    def apply(self, fields: dict[str, object]) -> dict[str, object]:
        """Request fields with the user's explicit choices laid over them."""
        chosen = {
            "negative_prompt": self.negative_prompt,
            "aspect": self.aspect,
            "seed": self.seed,
            "style": self.style,
            "n": self.count,
            "model": self.model,
            "best_of": self.best_of,
        }
        return {**fields, **{k: v for k, v in chosen.items() if v is not None}}


@dataclass(frozen=True)
class Requester:
    """Who asks for an image, where, and under which rules: the input of every image operation.

    The LLM tools, the buttons, `/imagine raw` and the CLI all describe their caller with this,
    so that caps, safety, audit and the user's explicit options apply the same way everywhere.
    """

    user_id: str
    user_words: str
    conversation: str = ""
    guild_id: str | None = None
    channel_id: str | None = None
    source_id: str | None = None  # the Discord message or interaction this answers (audit)
    reply_to: str | None = None  # the Discord message the user replied to ("edit this")
    options: ImageOptions = field(default_factory=ImageOptions)
    watch: JobWatch | None = None
    nsfw: bool = False  # NSFW allowed here: no blocklist, no worker safety check
    guild_cap: int | None = None  # the server's own cap on images in flight (/settings server)
    best_of: int | None = None  # the server's default number of best-of candidates (/settings server)


@dataclass(frozen=True)
class TurnContext:
    """What a tool receives for one turn: input only (react-agent's `Context`).

    Results travel back as the tool's return value and its typed outcome on the graph's
    custom stream (`tools.image_tool`), never through this object.
    """

    images: ImageService
    who: Requester
    history_note: str = ""  # the user's images here, as the model sees them (read once per turn)
    # The languages the model drawing this turn's pictures reads: the model writes its prompt in one of them.
    prompt_languages: tuple[str, ...] = ("en",)
