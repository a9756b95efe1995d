"""What a button under a result is: its label, who may press it, and what pressing it does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from agent.service import TurnResult
from egaku.i18n import Text
from tools.stores.history import Generation

# Posts a result as the press's followup, with its own buttons (`bot.buttons.view.send_result`).
Post = Callable[[discord.Interaction, TurnResult, str], Awaitable[None]]
Press = Callable[[discord.Interaction, Generation, Post], Awaitable[None]]


@dataclass(frozen=True)
class ButtonAction:
    """One kind of button. Its name is the action in the custom_id (`egaku:<name>:<image id>`)."""

    name: str
    emoji: str
    label: Text | None  # None: an emoji-only button (the pans)
    press: Press  # runs after the image was found and the presser checked
    owner_only: bool = False  # only the person who asked for the image may press it
    danger: bool = False  # drawn red
    # Presses that start GPU work are guarded against double presses.
    guarded: bool = False
    # The label where the image service has no upscaler, for a button whose press then falls back.
    fallback_label: Text | None = None

    def label_for(self, upscaler: bool) -> Text | None:
        """The button's label, as the image service's upscaler (or its absence) makes it true."""
        return self.label if upscaler or self.fallback_label is None else self.fallback_label
