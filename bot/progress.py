"""Progress while the GPU works: one status message, edited at a polite rate, with a cancel button.

The chat keeps answering meanwhile: jobs run inside their own turn's task, and a
"cancel" (or "やめて") message, or the button, cancels the user's jobs in that channel.
Where the bot may not post in the channel (a user-installed command in a server it has not
joined, a group DM), the status message is a followup of the interaction instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import ui

from bot.jobs import Owner
from bot.language import interaction_voice
from bot.reach import posts_in_channel
from egaku.i18n import Text, Voice, _
from tools.service.requests import Waiting
from worker.protocol import ProgressEvent

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

CANCEL_WORDS = frozenset(
    {
        "cancel",
        "stop",
        "abort",
        "やめて",
        "キャンセル",
        "中止",
        "止めて",
        "とめて",
        "取消",
        "停止",
        "취소",
        "중지",
        "그만",
    }
)
CANCEL = _("Cancel")
EDIT_INTERVAL_S = 1.5  # Discord allows about 5 edits per 5 s per channel; stay well under
SHOW_AFTER_S = 2.0  # fast jobs need no status message (and no flicker)
WAITING = _("⏳ Waiting for the GPU…")
WORKER_AWAY = _("⏳ The image service is restarting; your picture carries on when it is back…")
# Posts the status message: `channel.send`, or an interaction's followup (keyword arguments: view, files).
Post = Callable[..., Awaitable[discord.Message]]


def is_cancel(text: str) -> bool:
    """Whether a message asks to cancel ("cancel", "やめて"...)."""
    return re.sub(r"[\s!！。.、]+", "", text.lower()) in CANCEL_WORDS


def ordinal(n: int) -> Text:
    """1st, 2nd, 3rd, 4th... 11th, 12th, 13th... 21st (each language has one form for all of them: 2番目)."""
    if n % 10 == 1 and n % 100 != 11:
        return _("{n}st", n=n)
    if n % 10 == 2 and n % 100 != 12:
        return _("{n}nd", n=n)
    if n % 10 == 3 and n % 100 != 13:
        return _("{n}rd", n=n)
    return _("{n}th", n=n)


def describe(event: ProgressEvent | Waiting) -> Text:
    """The status line for a progress event, or for a wait before the worker."""
    if isinstance(event, Waiting):
        if event.reason == "worker" or event.place is None:
            return WORKER_AWAY
        wait = _(", about {eta:.0f} s", eta=event.eta_s) if event.eta_s else ""
        return _("⏳ {place} in line{wait}…", place=ordinal(event.place), wait=wait)
    if event.kind == "queued":
        if event.eta_s:
            return _("⏳ In the queue (position {position}, about {eta:.0f} s)…", position=event.position or 0,
                     eta=event.eta_s)  # fmt: skip
        return _("⏳ In the queue (position {position})…", position=event.position or 0)
    if event.kind == "step" and event.step and event.steps:
        percent = 100 * event.step // event.steps
        if event.eta_s:
            return _("🎨 Drawing… {percent}% · about {eta:.0f} s left", percent=percent, eta=event.eta_s)
        return _("🎨 Drawing… {percent}%", percent=percent)
    return _("🎨 Drawing…")


class StatusReporter:
    """A JobWatch for one turn: after `show_after_s`, a status message with a cancel button.

    The message shows the queue position or step %, the ETA, and the worker's latest
    latent preview as a small attachment. It is edited no more often than `edit_interval_s`.
    """

    def __init__(
        self,
        bot: EgakuBot,
        post: Post,
        user_id: int,
        channel_id: int,
        voice: Voice,
        *,
        show_after_s: float = SHOW_AFTER_S,
        edit_interval_s: float = EDIT_INTERVAL_S,
        describe: Callable[[ProgressEvent | Waiting], Text] = describe,
        adopt: discord.Message | discord.PartialMessage | None = None,
    ) -> None:
        self._bot = bot
        self._describe = describe
        self._post = post
        self._voice = voice
        self._owner = Owner(user_id, channel_id)
        self._show_after_s = show_after_s
        self._edit_interval_s = edit_interval_s
        # A status message from before a restart is taken over: edited, then removed at the end.
        self._message: discord.Message | discord.PartialMessage | None = adopt
        self._latest = voice(WAITING)
        self._shown = ""
        self._preview: bytes | None = None
        self._preview_shown: bytes | None = None
        self._last_edit = 0.0
        self._timers: dict[str, asyncio.Task[None]] = {}

    async def started(self, job_id: str) -> None:
        """Register the job (for cancels) and show a status message if it is still running later."""
        self._bot.jobs.add(job_id, self._owner)
        self._timers[job_id] = asyncio.create_task(self._show_later(job_id))

    async def _show_later(self, job_id: str) -> None:
        await asyncio.sleep(self._show_after_s)
        await self._render(job_id)

    async def progress(self, job_id: str, event: ProgressEvent | Waiting) -> None:
        """Remember the latest state; edit the message no more often than the interval allows."""
        if isinstance(event, ProgressEvent) and event.kind == "preview":
            if event.b64_png:
                with contextlib.suppress(ValueError):
                    self._preview = base64.b64decode(event.b64_png, validate=True)
        else:
            self._latest = self._voice(self._describe(event))
        if self._message is not None and time.monotonic() - self._last_edit >= self._edit_interval_s:
            await self._render(job_id)

    async def _render(self, job_id: str) -> None:
        new_preview = self._preview is not None and self._preview is not self._preview_shown
        if self._latest == self._shown and not new_preview:
            return
        self._shown, self._last_edit = self._latest, time.monotonic()
        files = [discord.File(io.BytesIO(self._preview), "preview.png")] if new_preview and self._preview else []
        self._preview_shown = self._preview
        try:
            if self._message is None:
                self._message = await self._post(self._latest, view=cancel_view(job_id, self._voice), files=files)
                await self._note(job_id, str(self._message.id))
            elif files:
                await self._message.edit(content=self._latest, attachments=files)
            else:
                await self._message.edit(content=self._latest)
        except Exception:
            # Progress is a courtesy: a refused edit, or an answer discord.py cannot parse (a
            # server that speaks Discord imperfectly), must never take the turn down.
            log.warning("could not update the status message for job %s", job_id, exc_info=True)

    async def finished(self, job_id: str) -> None:
        """Unregister the job and remove the status message."""
        self._bot.jobs.remove(job_id)
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()
        if self._message is not None:
            try:
                await self._message.delete()
            except Exception:
                log.warning("could not delete the status message for job %s", job_id, exc_info=True)
            self._message, self._shown, self._preview, self._preview_shown = None, "", None, None
            await self._note(job_id, None)

    async def _note(self, job_id: str, message_id: str | None) -> None:
        """Tell the journal where the job's status message is, so that a restart takes it over."""
        journal = self._bot.services.images.journal
        if journal is None:
            return
        try:
            await journal.status_shown(job_id, str(self._owner.channel_id), message_id)
        except Exception:
            log.warning("could not note the status message of job %s", job_id, exc_info=True)


def reporter(bot: EgakuBot, post: Post, user_id: int, channel_id: int, voice: Voice) -> StatusReporter:
    """A status reporter with the bot's configured timing."""
    services = bot.services
    return StatusReporter(
        bot, post, user_id, channel_id, voice, show_after_s=services.status_after_s,
        edit_interval_s=services.status_edit_s,
    )  # fmt: skip


def status_post(bot: EgakuBot, interaction: discord.Interaction) -> Post | None:
    """Where a slash command's or button's status message goes: its channel, or its followups where the bot
    may not post in the channel; None where neither can carry one."""
    if not posts_in_channel(bot, interaction):
        return functools.partial(interaction.followup.send, wait=True)
    channel = interaction.channel
    return channel.send if isinstance(channel, discord.abc.Messageable) else None


def watch_for(bot: EgakuBot, interaction: discord.Interaction) -> StatusReporter | None:
    """A status reporter for a slash command or button, in the asker's language."""
    post = status_post(bot, interaction)
    if post is None:
        return None
    voice = interaction_voice(bot, interaction)
    return reporter(bot, post, interaction.user.id, interaction.channel_id or 0, voice)


def cancel_view(job_id: str, voice: Voice) -> ui.View:
    """A view with the cancel button for one job (state in the custom_id; no live view kept)."""
    view = ui.View(timeout=None)
    view.add_item(CancelButton(job_id, voice(CANCEL)))
    view.stop()
    return view


async def cancel_jobs(bot: EgakuBot, job_ids: list[str]) -> int:
    """Cancel these jobs (waiting in line, waiting for the worker, or at the worker); how many were still there."""
    images = bot.services.images
    return sum([await images.cancel(job_id) for job_id in job_ids])


class CancelButton(ui.DynamicItem[ui.Button[Any]], template=r"egaku:cancel:(?P<job>[0-9a-f]{16})"):
    """Cancels a job in flight; only its owner may press it."""

    def __init__(self, job_id: str, label: str = str(CANCEL)) -> None:
        super().__init__(
            ui.Button(label=label, emoji="✖️", style=discord.ButtonStyle.danger, custom_id=f"egaku:cancel:{job_id}")
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> CancelButton:
        """Rebuild from the custom_id."""
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Cancel, if the presser owns the job."""
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        voice = interaction_voice(bot, interaction)
        owner = bot.jobs.owner(self.job_id)
        if owner is None:
            await interaction.response.send_message(voice(_("That picture is already finished.")), ephemeral=True)
            return
        if owner.user_id != interaction.user.id:
            await interaction.response.send_message(
                voice(_("Only the person who asked can cancel it.")), ephemeral=True
            )
            return
        await interaction.response.send_message(voice(_("Cancelling…")), ephemeral=True)
        await cancel_jobs(bot, [self.job_id])
