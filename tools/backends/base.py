"""What the image service asks of a backend: an egaku worker (`WorkerClient`) or OpenAI's API (`OpenAIImages`).

One protocol, one typed request per call. The backend renders and raises an `EgakuError` on
failure; who asked, and the words they used, stay with the image service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from tools.pictures import RenderedImage
from worker.protocol import EditRequest, GenerationRequest, ProgressEvent, UpscaleRequest

ProgressCallback = Callable[[ProgressEvent], Awaitable[None]]


@dataclass(frozen=True)
class ImageEdit:
    """An edit as a backend receives it: the validated request, the picture, an optional mask, and the pictures the
    model reads beside it, in order (the edited one is "picture 1", the first reference "picture 2")."""

    request: EditRequest
    image: bytes
    mask: bytes | None = None  # white where to paint (egaku's luminance masks); it belongs to `image`
    references: tuple[bytes, ...] = ()

    @property
    def pictures(self) -> tuple[bytes, ...]:
        """Every picture the model reads, in order: the edited one first."""
        return (self.image, *self.references)

    def parts(self) -> list[tuple[str, bytes, str]]:
        """The pictures as multipart file parts (field, bytes, file name): several go as OpenAI sends them,
        `image[]` in order; one stays `image`."""
        field = "image[]" if self.references else "image"
        return [(field, data, f"image-{n}.png" if n else "image.png") for n, data in enumerate(self.pictures)]


@dataclass(frozen=True)
class ImageUpscale:
    """An upscale as a backend receives it: the validated request and the picture."""

    request: UpscaleRequest
    image: bytes


@dataclass(frozen=True)
class Upscaled:
    """A picture enlarged by an upscaler: its PNG, its size, and the upscaler's name."""

    png: bytes
    width: int
    height: int
    upscaler: str


class ImageBackend(Protocol):
    """Anything that renders requests: the worker client, OpenAI's API, or a test's fake."""

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """Render a new picture."""
        ...

    async def edit(self, edit: ImageEdit, on_progress: ProgressCallback | None = None) -> list[RenderedImage]:
        """Edit a picture."""
        ...

    async def upscale(self, upscale: ImageUpscale) -> Upscaled:
        """Enlarge a picture with the backend's upscaler (a super-resolution network: nothing redrawn)."""
        ...

    async def upscaler(self) -> str | None:
        """The backend's upscaler, by name; None when it has none (the plain upscale buttons then fall back)."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when the backend no longer has it (or cannot cancel)."""
        ...

    async def describe(self, image: bytes) -> str:
        """An English prompt for a picture (/describe and the agent's captions)."""
        ...
