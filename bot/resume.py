"""After a restart, every request the journal holds unanswered goes on, and is answered once.

For each open turn, oldest first, each in its own task (its jobs wait in their server's line like
any other):

- the jobs that had not finished are sent again under their ids, with a status message (the
  one shown before the restart is taken over, so its Cancel button works again): the worker
  attaches each to the job it still has, answers it from its kept result, or draws it once;
- a turn that had no job yet (the bot was killed while the model thought) runs again from the
  start when its front end kept how (`ask`); otherwise the asker is told plainly;
- the answer goes where the request came from (`bot.deliver.deliver_to`): the pictures with
  their buttons and the model's words, as if nothing had happened, and a failure with a Retry
  button. Silence is never an outcome.

A turn that starts already took up `MAX_ATTEMPTS` times (it may be what kills the bot) is
answered with a plain failure and a Retry button instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from typing import TYPE_CHECKING

import discord

from agent.service import TurnResult
from bot.answering import answer_voice, deliver_once, turn_from
from bot.buttons.view import result_messages
from bot.deliver import token_alive
from bot.progress import Post, StatusReporter
from egaku.errors import failure_notice, report
from egaku.i18n import ENGLISH_VOICE, Voice, _
from tools.pictures import RenderedImage
from tools.service.requests import AnswerTo, Drawn, Outcome
from tools.stores.history import Generation, History
from tools.stores.journal import JournaledJob, OpenTurn

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RESTARTED_TEXT = _("I was restarted before I could finish this, and I can't pick it up again. Please ask again.")
GAVE_UP_TEXT = _("I couldn't finish this after several restarts. Press Retry to try again.")


async def resume_all(bot: EgakuBot, turns: list[OpenTurn]) -> None:
    """Take up the requests a previous process left unanswered (read before this one took any); return when done."""
    if turns:
        log.info("resuming %d unanswered request(s) from before the restart", len(turns))
    await asyncio.gather(*(resume_turn(bot, turn) for turn in turns))


async def resume_turn(bot: EgakuBot, turn: OpenTurn) -> None:
    """Finish one request and answer it where it was asked; on a failure, logged, it stays for the next start."""
    journal = bot.services.images.journal
    assert journal is not None
    voice = answer_voice(bot, turn.answer)  # the language chosen when it was asked
    try:
        attempts = await journal.resumed(turn.turn)
        if attempts > MAX_ATTEMPTS:
            retries = [job.job_id for job in turn.jobs if not job.finished or job.retryable]
            result = TurnResult(reply=str(GAVE_UP_TEXT), fixed=GAVE_UP_TEXT, retries=retries)
        elif turn.jobs:
            result = await finish_jobs(bot, turn)
        elif turn.ask is not None:
            result = await run_again(bot, turn, voice)
        else:
            result = TurnResult(reply=str(RESTARTED_TEXT), fixed=RESTARTED_TEXT)
        notice = failure_notice(result.failures, "resume", voice)
        if not (result.said(voice) or result.images or notice):
            notice = voice(RESTARTED_TEXT)
        outgoing = await result_messages(bot, result, notice, voice)
        await deliver_once(bot, turn.answer, outgoing, "resume", shown=result)
    except Exception:
        log.exception("could not answer %s after the restart; it stays in the journal", turn.turn)


async def finish_jobs(bot: EgakuBot, turn: OpenTurn) -> TurnResult:
    """The turn's jobs, each ended: sent again if unfinished, read back from the history if done."""
    outcomes = await asyncio.gather(*(finish_job(bot, job) for job in turn.jobs))
    words = next((job.planned.reply for job in turn.jobs if job.planned.reply), None) or ""
    failed_before = [job for job in turn.jobs if job.state == "failed"]
    result = TurnResult.of(list(outcomes), reply=words)
    if failed_before:
        # Said before the restart, in the service's own words: said again (in the asker's language), with Retry
        # where it may help.
        said = list(dict.fromkeys(job.error for job in failed_before if job.error is not None))
        retries = [*result.retries, *(job.job_id for job in failed_before if job.retryable)]
        result = dataclasses.replace(result, notices=[*result.notices, *said], retries=retries)
    return result


async def finish_job(bot: EgakuBot, job: JournaledJob) -> Outcome:
    """One job's outcome: its kept pictures, or the job sent again with a status message."""
    history = bot.services.images.history
    if job.state in ("done", "posted") and history is not None:
        return Drawn(tuple(await shown(history, list(job.images))), notice=job.planned.notice)
    if job.state == "failed":
        return Drawn(())  # told with the turn's words (finish_jobs)
    watch = resumed_watch(bot, job)
    return await bot.services.images.resume(job, dataclasses.replace(job.who, watch=watch))


async def run_again(bot: EgakuBot, turn: OpenTurn, voice: Voice) -> TurnResult:
    """A turn that had no job when the bot stopped: the model is asked again (the conversation kept no part of it)."""
    assert turn.ask is not None
    post = status_post(bot, turn.answer)
    watch = None if post is None else StatusReporter(
        bot, post, int(turn.answer.user_id), int(turn.answer.channel_id), voice,
        show_after_s=bot.services.status_after_s, edit_interval_s=bot.services.status_edit_s,
    )  # fmt: skip
    try:
        return await bot.services.agent.respond(turn_from(turn.ask, turn.answer, watch))
    except Exception as exc:
        return TurnResult(reply=report(exc, "resume", voice))


def resumed_watch(bot: EgakuBot, job: JournaledJob) -> StatusReporter | None:
    """A status reporter for a resumed job, taking over the status message shown before the restart."""
    answer = job.who.answer
    channel_id = int(answer.channel_id if answer is not None else job.who.channel_id or 0)
    channel = bot.get_partial_messageable(channel_id)
    in_channel = answer is None or answer.in_channel
    post = status_post(bot, answer) if answer is not None else channel.send
    if post is None:
        return None
    # A status message that was a followup (where the bot is no member) is not taken over: only its webhook edits it.
    adopt = channel.get_partial_message(int(job.status[1])) if job.status is not None and in_channel else None
    voice = answer_voice(bot, answer) if answer is not None else ENGLISH_VOICE
    return StatusReporter(
        bot, post, int(job.who.user_id), channel_id, voice, show_after_s=bot.services.status_after_s,
        edit_interval_s=bot.services.status_edit_s, adopt=adopt,
    )  # fmt: skip


def status_post(bot: EgakuBot, answer: AnswerTo) -> Post | None:
    """Where a resumed request's status message goes: its channel, or, where the bot is no member, a followup
    while the interaction's token lives (else nowhere)."""
    if answer.in_channel:
        return bot.get_partial_messageable(int(answer.channel_id)).send
    if not token_alive(answer):
        return None
    assert answer.application_id is not None and answer.token is not None
    webhook = discord.Webhook.partial(int(answer.application_id), answer.token, client=bot)
    return functools.partial(webhook.send, wait=True)


async def shown(history: History, ids: list[str]) -> list[RenderedImage]:
    """Pictures made before the restart, read back from the history as the bot posts them (best-of's losers too)."""
    images = []
    for generation_id in ids:
        generation = await history.get(generation_id)
        if generation is not None:
            losers = tuple(rendered(g, b"") for g in await history.candidates(generation.id))
            images.append(dataclasses.replace(rendered(generation, history.png(generation)), candidates=losers))
    return images


def rendered(generation: Generation, png: bytes) -> RenderedImage:
    """A picture of the history in the shape a backend returns (its guidance is not kept: 0)."""
    names = [f.name for f in dataclasses.fields(RenderedImage) if hasattr(generation, f.name)]
    picture = {name: getattr(generation, name) for name in names}
    return RenderedImage(**{**picture, "png": png, "guidance": 0.0, "candidates": ()})
