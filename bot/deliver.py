"""Sending composed messages to a channel, a reply, or an interaction followup.

What Discord refuses is explained in the message's own language (`Outgoing.voice`, or the voice
the caller passes). A journaled answer's channel messages carry nonces (`bot.answering.nonce_for`):
a post repeated after a crash, or after a 5xx that Discord had in fact carried out, returns the
first message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.reach import posts_in_channel
from bot.render import DEFAULT_UPLOAD_LIMIT, Outgoing, shrink, total_bytes
from egaku.errors import PostFailed, report, safe_detail
from egaku.i18n import Voice, _
from tools.service.requests import AnswerTo

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

Send = Callable[..., Awaitable[discord.Message]]
RETRIES = 8  # doubling waits from 1 s, capped at 30 s: 1+2+4+8+16+30+30 s, a 90-second outage, then give up
TOO_LARGE = _("The image was too large to upload here, even after shrinking it. Try a smaller size.")


TOKEN_LIFE_S = 15 * 60.0  # Discord honours an interaction's token this long
TOKEN_MARGIN_S = 60.0  # a post started this close to its end goes to the channel instead


_sleep = asyncio.sleep  # the backoff's clock; tests replace it to ride out long outages instantly


def nonce_for(turn: str, part: int) -> str:
    """The nonce of the `part`-th message of a turn's answer: the same at every try, at most 25 characters."""
    return f"e{hashlib.sha256(turn.encode()).hexdigest()[:20]}{part}"


def token_alive(answer: AnswerTo, now: float | None = None) -> bool:
    """Whether the interaction's token still takes a post (with a margin for the post itself)."""
    if answer.token is None or answer.application_id is None:
        return False
    return (now if now is not None else time.time()) < answer.asked_at + TOKEN_LIFE_S - TOKEN_MARGIN_S


def send_kwargs(out: Outgoing) -> dict[str, Any]:
    """discord.py keyword arguments for one outgoing message (empty parts left out)."""
    kwargs: dict[str, Any] = {}
    if out.content:
        kwargs["content"] = out.content
    if out.embeds:
        kwargs["embeds"] = out.embeds
    if out.files:
        kwargs["files"] = out.files
    if out.view is not None:
        kwargs["view"] = out.view
    if out.ephemeral:
        kwargs["ephemeral"] = True
    return kwargs


def _sent(outgoing: list[Outgoing], messages: list[discord.Message]) -> list[discord.Message]:
    # Buttons keep their state in their custom_id; dropping the live view means every press,
    # before or after a restart, takes the same DynamicItem path.
    for out in outgoing:
        if out.view is not None:
            out.view.stop()
    return messages


async def _with_retries(send: Send, kwargs: dict[str, Any]) -> discord.Message:
    """Send, riding out 429s that discord.py leaves to us (no Via header) and 5xx for about 90 s."""
    delay = 1.0
    for attempt in range(RETRIES):
        try:
            return await send(**kwargs)
        except discord.HTTPException as exc:
            if not (exc.status == 429 or exc.status >= 500) or attempt == RETRIES - 1:
                raise
            retry_after = _retry_after(exc)
            wait = min(30.0, retry_after if retry_after is not None else delay) * random.uniform(1.0, 1.25)
            log.warning("Discord answered %s; retrying in %.1fs", exc.status, wait)
            for file in kwargs.get("files", []):
                file.reset()
            await _sleep(wait)
            delay = min(30.0, delay * 2)
    raise AssertionError("unreachable")


def _retry_after(exc: discord.HTTPException) -> float | None:
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


async def _send(send: Send, out: Outgoing, limit: int, voice: Voice, nonce: dict[str, str]) -> discord.Message:
    """Send one message; files over the upload limit are re-encoded first, and once more after a 413."""
    if total_bytes(out) > limit:
        out = await asyncio.to_thread(shrink, out, limit)
    try:
        return await _with_retries(send, {**send_kwargs(out), **nonce})
    except discord.HTTPException as exc:
        if exc.status != 413 or not out.images:
            raise
        log.warning("upload refused as too large (%s bytes); re-encoding", total_bytes(out))
        smaller = await asyncio.to_thread(shrink, out, limit // 2)
        try:
            return await _with_retries(send, {**send_kwargs(smaller), **nonce})
        except discord.HTTPException as again:
            if again.status != 413:
                raise
            text = "\n\n".join(p for p in (out.content, voice(TOO_LARGE)) if p)
            return await _with_retries(send, {"content": text, **nonce})


async def reply_to(
    message: discord.Message, outgoing: list[Outgoing], where: str, voice: Voice, *, answer: AnswerTo | None = None
) -> list[discord.Message]:
    """Post as replies to the user's message, without pinging them (with nonces when it answers a journaled turn)."""
    limit = message.guild.filesize_limit if message.guild else DEFAULT_UPLOAD_LIMIT

    async def send(**kwargs: Any) -> discord.Message:
        return await message.reply(**kwargs, mention_author=False)

    return await _post_or_explain(send, outgoing, limit, where, voice, answer)


async def followup(
    interaction: discord.Interaction,
    outgoing: list[Outgoing],
    where: str,
    voice: Voice,
    *,
    answer: AnswerTo | None = None,
) -> list[discord.Message]:
    """Post as followups of a deferred interaction; after its 15-minute token expires, in the channel.

    Where the bot may not post in the channel (a user-installed command), an expired token ends it.
    """
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    in_channel = posts_in_channel(bot, interaction)
    expired = False

    async def send(**kwargs: Any) -> discord.Message:
        nonlocal expired
        nonce = kwargs.pop("nonce", None)  # a webhook takes none; the channel fallback does
        if not expired:
            try:
                return await interaction.followup.send(**kwargs, wait=True)
            except discord.HTTPException as exc:
                if (exc.status != 401 and exc.code != 50027) or not in_channel:
                    raise
                log.warning("interaction %s token expired; answering in the channel", interaction.id)
                expired = True
                for file in kwargs.get("files", []):
                    file.reset()
        if nonce is not None:
            kwargs["nonce"] = nonce
        return await channel_fallback(interaction, kwargs)

    return await _post_or_explain(send, outgoing, interaction.filesize_limit, where, voice, answer)


async def deliver_to(bot: EgakuBot, answer: AnswerTo, outgoing: list[Outgoing], where: str) -> list[discord.Message]:
    """Post an answer by its address alone (after a restart, or for a Retry): the same place, exactly once.

    A message's answer replies to it (in the channel, even if the message is gone). An
    interaction's answer fills its deferred response, by an edit that comes out the same however
    often it is made; past the token's life it goes to the channel, pinging only the asker, where
    the bot may post there (`AnswerTo.in_channel`). It speaks the language chosen when it was asked.
    """
    if not answer.in_channel and not token_alive(answer):
        log.warning("the answer to %s cannot reach its asker: the token is gone and the bot is no member there",
                    answer.turn)  # fmt: skip
        return []
    voice = bot.services.catalogs.voice(answer.locale)
    channel = bot.get_partial_messageable(int(answer.channel_id))
    user = discord.Object(int(answer.user_id))
    filled = False

    async def to_channel(**kwargs: Any) -> discord.Message:
        if answer.message_id is not None:
            reference = discord.MessageReference(
                message_id=int(answer.message_id), channel_id=int(answer.channel_id), fail_if_not_exists=False
            )
            return await channel.send(**kwargs, reference=reference, mention_author=False)
        kwargs.pop("ephemeral", None)
        content = f"<@{answer.user_id}> {kwargs.pop('content', '')}".strip()
        return await channel.send(content=content[:2000], allowed_mentions=discord.AllowedMentions(users=[user]),
                                  **kwargs)  # fmt: skip

    async def send(**kwargs: Any) -> discord.Message:
        nonlocal filled
        if not token_alive(answer):
            return await to_channel(**kwargs)
        assert answer.application_id is not None and answer.token is not None
        webhook = discord.Webhook.partial(int(answer.application_id), answer.token, client=bot)
        nonce = kwargs.pop("nonce", None)
        try:
            if answer.original_id is not None and not filled:
                # The deferral chose the response's visibility; its files replace the attachments.
                edit = {k: v for k, v in kwargs.items() if k not in ("files", "ephemeral")}
                message = await webhook.edit_message(
                    int(answer.original_id), attachments=kwargs.get("files", []), **edit
                )
                filled = True
                return message
            return await webhook.send(**kwargs, wait=True)
        except discord.HTTPException as exc:
            if (exc.status != 401 and exc.code != 50027) or not answer.in_channel:
                raise
        for file in kwargs.get("files", []):
            file.reset()
        return await to_channel(**kwargs, **({"nonce": nonce} if nonce is not None else {}))

    return await _post_or_explain(send, outgoing, DEFAULT_UPLOAD_LIMIT, where, voice, answer)


async def _post_or_explain(
    send: Send, outgoing: list[Outgoing], limit: int, where: str, voice: Voice, answer: AnswerTo | None = None
) -> list[discord.Message]:
    """Post the messages; if Discord will not take one, say so plainly instead of going silent.

    The pictures are already in the history (the image service keeps them before anything is
    posted), so the user can ask for them again; the cause is logged under the error id.
    """
    sent: list[discord.Message] = []

    def nonce() -> dict[str, str]:
        return {"nonce": nonce_for(answer.turn, len(sent))} if answer is not None else {}

    try:
        for out in outgoing:
            sent.append(await _send(send, out, limit, voice, nonce()))
    except Exception as exc:
        text = report(PostFailed(f"Discord refused the result: {safe_detail(exc)}"), where, voice)
        sent.append(await _with_retries(send, {"content": text, **nonce()}))
    return _sent(outgoing, sent)


async def channel_fallback(interaction: discord.Interaction, kwargs: dict[str, Any]) -> discord.Message:
    """A channel message that pings only the person who asked (their token is gone)."""
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        raise discord.ClientException("no channel to fall back to")
    mention = interaction.user.mention
    kwargs.pop("ephemeral", None)  # a channel message is seen by all
    content = f"{mention} {kwargs.pop('content', '')}".strip()
    return await channel.send(
        content=content[:2000], allowed_mentions=discord.AllowedMentions(users=[interaction.user]), **kwargs
    )
