"""Sending composed messages to a channel, a reply, or an interaction followup.

What Discord refuses is explained in the message's own language (`Outgoing.voice`, or the voice
the caller passes).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.reach import posts_in_channel
from bot.render import DEFAULT_UPLOAD_LIMIT, Outgoing, shrink, total_bytes
from egaku.errors import PostFailed, report, safe_detail
from egaku.i18n import Voice, _

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

Send = Callable[..., Awaitable[discord.Message]]
RETRIES = 8  # doubling waits from 1 s, capped at 30 s: 1+2+4+8+16+30+30 s, a 90-second outage, then give up
TOO_LARGE = _("The image was too large to upload here, even after shrinking it. Try a smaller size.")


_sleep = asyncio.sleep  # the backoff's clock; tests replace it to ride out long outages instantly


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


async def _send(send: Send, out: Outgoing, limit: int, voice: Voice) -> discord.Message:
    """Send one message; files over the upload limit are re-encoded first, and once more after a 413."""
    if total_bytes(out) > limit:
        out = await asyncio.to_thread(shrink, out, limit)
    try:
        return await _with_retries(send, send_kwargs(out))
    except discord.HTTPException as exc:
        if exc.status != 413 or not out.images:
            raise
        log.warning("upload refused as too large (%s bytes); re-encoding", total_bytes(out))
        smaller = await asyncio.to_thread(shrink, out, limit // 2)
        try:
            return await _with_retries(send, send_kwargs(smaller))
        except discord.HTTPException as again:
            if again.status != 413:
                raise
            text = "\n\n".join(p for p in (out.content, voice(TOO_LARGE)) if p)
            return await _with_retries(send, {"content": text})


async def reply_to(
    message: discord.Message, outgoing: list[Outgoing], where: str, voice: Voice
) -> list[discord.Message]:
    """Post as replies to the user's message, without pinging them."""
    limit = message.guild.filesize_limit if message.guild else DEFAULT_UPLOAD_LIMIT

    async def send(**kwargs: Any) -> discord.Message:
        return await message.reply(**kwargs, mention_author=False)

    return await _post_or_explain(send, outgoing, limit, where, voice)


async def followup(
    interaction: discord.Interaction, outgoing: list[Outgoing], where: str, voice: Voice
) -> list[discord.Message]:
    """Post as followups of a deferred interaction; after its 15-minute token expires, in the channel.

    Where the bot may not post in the channel (a user-installed command), an expired token ends it.
    """
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    in_channel = posts_in_channel(bot, interaction)
    expired = False

    async def send(**kwargs: Any) -> discord.Message:
        nonlocal expired
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
        return await channel_fallback(interaction, kwargs)

    return await _post_or_explain(send, outgoing, interaction.filesize_limit, where, voice)


async def _post_or_explain(
    send: Send, outgoing: list[Outgoing], limit: int, where: str, voice: Voice
) -> list[discord.Message]:
    """Post the messages; if Discord will not take one, say so plainly instead of going silent.

    The pictures are already in the history (the image service keeps them before anything is
    posted), so the user can ask for them again; the cause is logged under the error id.
    """
    sent: list[discord.Message] = []
    try:
        for out in outgoing:
            sent.append(await _send(send, out, limit, voice))
    except Exception as exc:
        text = report(PostFailed(f"Discord refused the result: {safe_detail(exc)}"), where, voice)
        sent.append(await _with_retries(send, {"content": text}))
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
