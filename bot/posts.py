"""An answer being posted, in its channel: what a stopping bot and a reply in that channel wait for."""

from __future__ import annotations

import asyncio
import dataclasses


@dataclasses.dataclass(frozen=True)
class Post:
    """An answer being posted, marked and linked, in a channel; `done` is set when it is."""

    channel_id: str
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
