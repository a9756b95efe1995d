"""What the fake Discord remembers about messages it created: nonces, and interactions' original responses.

Discord's rules, as the fake keeps them:
- A message created with a `nonce` and `enforce_nonce: true` is remembered for a few minutes per
  channel; a second create with the same nonce is answered with the first message, and nothing
  new is posted (discord.py 2.7 sends a nonce with `enforce_nonce` on every channel message).
- A deferred interaction (callback type 5) has a loading original response in its channel. The
  first followup fills it (and keeps the deferral's visibility); later followups are new
  messages. `PATCH .../messages/@original` edits it, however often.
- An interaction's token works for 15 minutes; after that every webhook call with it is
  refused with 401 and code 50027 (Invalid Webhook Token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NONCE_WINDOW_S = 300.0  # "a few minutes"
TOKEN_LIFE_S = 15 * 60.0
LOADING = 1 << 7  # the message flag of a deferred response still "thinking"


@dataclass
class Interaction:
    """What Discord keeps of one interaction: where it was used, when, and its original response."""

    channel_id: str
    sent_at: float
    original: int | None = None  # the original response's message id
    filled: bool = False  # the original response has its content (a followup or an edit gave it)


@dataclass
class Deliveries:
    """Nonces per channel and interactions by token."""

    clock: Callable[[], float]
    nonces: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    interactions: dict[str, Interaction] = field(default_factory=dict)
    repeats: int = 0  # creates answered with the first message of their nonce

    def repeated(self, channel_id: str, body: dict[str, Any]) -> int | None:
        """The id of the message a create with this nonce already made, within the window."""
        nonce = body.get("nonce")
        if nonce is None or not body.get("enforce_nonce"):
            return None
        seen = self.nonces.get((channel_id, str(nonce)))
        if seen is None or self.clock() - seen[0] > NONCE_WINDOW_S:
            return None
        self.repeats += 1
        return seen[1]

    def created(self, channel_id: str, body: dict[str, Any], message: dict[str, Any]) -> None:
        """Remember a new message's nonce."""
        nonce = body.get("nonce")
        if nonce is not None:
            message["nonce"] = nonce
            if body.get("enforce_nonce"):
                self.nonces[(channel_id, str(nonce))] = (self.clock(), int(message["id"]))

    def dispatched(self, token: str, channel_id: str) -> None:
        """An interaction was sent to the bot."""
        self.interactions[token] = Interaction(channel_id, self.clock())

    def expired(self, token: str) -> bool:
        """Whether a webhook call with this token comes too late."""
        known = self.interactions.get(token)
        return known is not None and self.clock() - known.sent_at > TOKEN_LIFE_S
