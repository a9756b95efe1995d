"""What a tool receives from the agent for one turn (LangGraph runtime context)."""

from __future__ import annotations

from dataclasses import dataclass

from tools.service.images import ImageService
from tools.service.requests import Requester


@dataclass(frozen=True)
class TurnContext:
    """What a tool receives for one turn: input only (react-agent's `Context`).

    Results travel back as the tool's typed outcome on the graph's custom stream
    (`tools.image_tools`), never through this object.
    """

    images: ImageService
    who: Requester
    history_note: str = ""  # the user's images here, as the model sees them (read once per turn)
    # The languages the model drawing this turn's pictures reads: the model writes its prompt in one of them.
    prompt_languages: tuple[str, ...] = ("en",)
