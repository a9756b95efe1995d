"""🔁 Retry: a journaled job that could not be finished, drawn again from the request it kept.

The button's custom_id carries the job's id ("egaku:retry:<16 hex>"), and the journal keeps
the validated request and who asked, so a press works after any number of restarts. Only the
person who asked may press it; the new job gets a fresh id and answers the press.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import ui

from agent.service import TurnResult
from bot.answering import answered, interaction_answer, opened
from bot.buttons.view import send_result
from bot.language import interaction_voice
from bot.policy import missing_permissions
from bot.progress import watch_for
from bot.render import retry_button
from egaku.errors import report
from egaku.i18n import _
from tools.service.watching import new_job_id

if TYPE_CHECKING:
    from bot.client import EgakuBot

RETRY_GONE = _("I no longer have that request. Please ask again.")
RETRY_NOT_YOURS = _("Only the person who asked can retry this.")
RETRY_BUSY = _("I'm already trying that one again.")


class RetryButton(ui.DynamicItem[ui.Button[Any]], template=r"egaku:retry:(?P<job>[0-9a-f]{16})"):
    """Draws a failed job again for the person who asked."""

    def __init__(self, job_id: str) -> None:
        super().__init__(retry_button(job_id))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> RetryButton:
        """Rebuild from the custom_id (after a restart too)."""
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Check the presser, defer, draw the kept request again, post it as the press's answer."""
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        images = bot.services.images
        voice = interaction_voice(bot, interaction)
        found = await images.journal.turn_of(self.job_id) if images.journal is not None else None
        if found is None:
            await interaction.response.send_message(voice(RETRY_GONE), ephemeral=True)
            return
        (job,) = found.jobs
        if str(interaction.user.id) != job.who.user_id:
            await interaction.response.send_message(voice(RETRY_NOT_YOURS), ephemeral=True)
            return
        problem = missing_permissions(interaction.app_permissions)
        if problem:
            await interaction.response.send_message(voice(problem), ephemeral=True)
            return
        with bot.seen.held(f"retry:{self.job_id}") as alone:
            if not alone:
                await interaction.response.send_message(voice(RETRY_BUSY), ephemeral=True)
                return
            deferred = await interaction.response.defer(thinking=True)
            answer = interaction_answer(interaction, deferred)
            await opened(bot, answer)
            who = dataclasses.replace(job.who, job_id=new_job_id(), answer=answer, watch=watch_for(bot, interaction))
            try:
                result = TurnResult.direct(await images.resume(job, who))
            except Exception as exc:
                await interaction.followup.send(report(exc, "button retry", voice), ephemeral=True)
                await answered(bot, answer)
                return
            await send_result(interaction, result, "button retry")
