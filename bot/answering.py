"""Answering a request exactly once: open it in the journal, post the answer, mark it answered.

A request (a message, a slash command, a press) is a journal *turn* (`tools.stores.journal`).
It is opened when the bot takes it up and marked answered right after its answer is posted.
A crash between the post and the mark must not post twice after the restart: every channel
message of an answer carries a nonce made from the turn and the message's place in the answer,
sent with `enforce_nonce`, so Discord answers a repeated create with the first message. An
interaction's answer fills its deferred response; a restarted bot edits that response (an edit
comes out the same however often it is made), or, past the token's 15 minutes, posts in the
channel with a nonce, pinging only the person who asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import discord

from agent.service import TurnRequest, TurnResult
from bot.deliver import deliver_to, followup, reply_to
from bot.language import interaction_voice
from bot.posts import Post
from bot.reach import posts_in_channel
from bot.render import Outgoing
from egaku.i18n import Voice
from tools.service.requests import AnswerTo, JobWatch, turn_key
from tools.stores.journal import requester_from_json, requester_json

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

# How long a reply to one of the bot's messages waits for the pictures of posts still in flight in its channel to
# be linked to their messages (`settled`): about as long as a slow upload, never a whole generation.
LINK_WAIT_S = 10.0


def message_answer(message: discord.Message, voice: Voice) -> AnswerTo:
    """The answer to a user's message: a reply to it, in `voice`'s language."""
    return AnswerTo(
        turn=turn_key("message", message.id),
        channel_id=str(message.channel.id),
        user_id=str(message.author.id),
        message_id=str(message.id),
        asked_at=message.created_at.timestamp(),
        locale=voice.locale,
    )


def interaction_answer(interaction: discord.Interaction, deferred: object = None) -> AnswerTo:
    """The answer to a slash command, a press or a form: its deferred response (`deferred`), while the token lives."""
    original = getattr(deferred, "message_id", None)
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    return AnswerTo(
        turn=turn_key("interaction", interaction.id),
        channel_id=str(interaction.channel_id or 0),
        user_id=str(interaction.user.id),
        interaction_id=str(interaction.id),
        application_id=str(interaction.application_id),
        token=interaction.token,
        original_id=str(original) if original else None,
        asked_at=interaction.created_at.timestamp(),
        locale=interaction_voice(bot, interaction).locale,
        in_channel=posts_in_channel(bot, interaction),
    )


def answer_voice(bot: EgakuBot, answer: AnswerTo) -> Voice:
    """The voice an answer speaks in: the language chosen when it was asked."""
    return bot.services.catalogs.voice(answer.locale)


async def opened(bot: EgakuBot, answer: AnswerTo, ask: TurnRequest | None = None) -> None:
    """Note a request the bot took up; `ask` is the turn to run again if a restart finds it unanswered."""
    journal = bot.services.images.journal
    if journal is None:
        return
    try:
        await journal.open_turn(answer, ask_of(ask) if ask is not None else None)
    except Exception:
        # The journal is a safety net: a request is still answered when it cannot be written.
        log.exception("could not write %s to the journal", answer.turn)


async def reply_once(
    bot: EgakuBot,
    message: discord.Message,
    outgoing: list[Outgoing],
    answer: AnswerTo,
    where: str = "chat",
    shown: TurnResult | None = None,
) -> list[discord.Message]:
    """Answer a user's message: post the replies (with nonces), mark the turn answered, link `shown`'s pictures."""
    with posting(bot, answer.channel_id):
        sent = await reply_to(message, outgoing, where, answer_voice(bot, answer), answer=answer)
        await answered(bot, answer)
        await link_shown(bot, shown, sent)
    return sent


async def follow_up_once(
    bot: EgakuBot,
    interaction: discord.Interaction,
    outgoing: list[Outgoing],
    answer: AnswerTo | None,
    where: str,
    shown: TurnResult | None = None,
) -> list[discord.Message]:
    """Answer a deferred interaction: post the followups, mark the turn answered, link `shown`'s pictures."""
    with posting(bot, answer.channel_id if answer is not None else str(interaction.channel_id or 0)):
        voice = answer_voice(bot, answer) if answer is not None else interaction_voice(bot, interaction)
        sent = await followup(interaction, outgoing, where, voice, answer=answer)
        await answered(bot, answer)
        await link_shown(bot, shown, sent)
    return sent


async def deliver_once(
    bot: EgakuBot, answer: AnswerTo, outgoing: list[Outgoing], where: str, shown: TurnResult | None = None
) -> list[discord.Message]:
    """Answer a request by its address alone (after a restart): post, mark the turn answered, link the pictures."""
    with posting(bot, answer.channel_id):
        sent = await deliver_to(bot, answer, outgoing, where)
        await answered(bot, answer)
        await link_shown(bot, shown, sent)
    return sent


async def link_shown(bot: EgakuBot, shown: TurnResult | None, sent: list[discord.Message]) -> None:
    """Link a turn's pictures to the message that shows them, for reply-to-edit."""
    history = bot.services.history
    ids = [image.id for image in shown.images if image.id] if shown is not None else []
    if history is not None and ids and sent:
        await history.attach_message(ids, str(sent[-1].id))


@contextlib.contextmanager
def posting(bot: EgakuBot, channel_id: str) -> Iterator[None]:
    """While an answer is posted, marked and linked: a bot that stops waits for it (`EgakuBot.close`), and so does
    a reply in its channel (`settled`)."""
    task, post = asyncio.current_task(), Post(channel_id)
    if task is not None:
        bot.posting[task] = post
    try:
        yield
    finally:
        post.done.set()
        bot.posting.pop(task, None)  # type: ignore[arg-type]


async def settled(bot: EgakuBot, channel_id: str, timeout: float = LINK_WAIT_S) -> None:
    """Wait until the answers being posted in this channel have linked their pictures (for at most `timeout`).

    Discord can deliver a reply to the bot's message before the bot has heard back from posting it, let alone
    linked its pictures to it; read then, the replied picture would be unknown for that turn.
    """
    here = [asyncio.ensure_future(post.done.wait()) for post in bot.posting.values() if post.channel_id == channel_id]
    if here:
        _, late = await asyncio.wait(here, timeout=timeout)
        for waiting in late:
            waiting.cancel()


async def answered(bot: EgakuBot, answer: AnswerTo | None) -> None:
    """Mark a request answered (its answer is posted): a restart will not answer it again."""
    journal = bot.services.images.journal
    if journal is None or answer is None:
        return
    try:
        await journal.answered(answer.turn)
    except Exception:
        log.exception("could not mark %s answered in the journal", answer.turn)


def ask_of(turn: TurnRequest) -> str:
    """A turn as the journal keeps it (its watcher belongs to the running bot and is left out)."""
    fields = {"who": requester_json(turn.who), "user_name": turn.user_name, "must_draw": turn.must_draw,
              "language": turn.language}  # fmt: skip
    return json.dumps(fields, ensure_ascii=False)


def turn_from(ask: str, answer: AnswerTo, watch: JobWatch | None) -> TurnRequest:
    """The turn back from `ask_of`, with its answer address and a watcher of this bot."""
    fields = json.loads(ask)
    who = dataclasses.replace(requester_from_json(fields["who"]), answer=answer, watch=watch)
    return TurnRequest(who=who, user_name=fields["user_name"], must_draw=fields["must_draw"],
                       language=fields["language"])  # fmt: skip
