"""Typed results that travel back from the worker to the agent and the bot."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RenderedImage:
    """One finished image and everything needed to show or redo it."""

    png: bytes
    prompt: str
    negative_prompt: str | None
    seed: int
    width: int
    height: int
    steps: int
    guidance: float
    model: str
    user_words: str
    id: str | None = None
    parent_id: str | None = None
    kind: str = "generate"
    score: float | None = None  # best-of-N: how well it matched the prompt (the worker's scorer)
    # best-of-N: the candidates this image was chosen over (it is the best of them all); kept, not posted
    candidates: tuple[RenderedImage, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        """A short line for the model's context: parameters, never pixels."""
        return f"seed {self.seed}, {self.width}x{self.height}, model {self.model}"
