"""The restart-safe buttons: those under every result, Cancel on status messages, and Retry on failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.buttons.view import ResultButton
from bot.progress import CancelButton
from bot.retry import RetryButton

if TYPE_CHECKING:
    from bot.client import EgakuBot


async def setup(bot: EgakuBot) -> None:
    """Extension entry point: discord.py rebuilds these from their custom_id, after a restart too."""
    bot.add_dynamic_items(ResultButton, CancelButton, RetryButton)
