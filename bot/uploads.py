"""Pictures users attach, kept as uploads: every one checked first, then all recorded in the history, in order.

A message's attachments and /blend's picture options take the same way in, so each upload is
fetched from Discord's CDN only, capped, re-encoded from pixels, and reachable afterwards under
the history's reference rule like any picture (an upload made in a DM stays in that DM).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.choices import IMAGE_TYPES
from tools.checks.uploads import fetch_attachment
from tools.stores.history import Generation

if TYPE_CHECKING:
    from bot.client import EgakuBot


@dataclass(frozen=True)
class Where:
    """Who uploads, where, from which message, in which words, and whether NSFW is allowed there."""

    user_id: int
    conversation: str  # the channel's, or the user's own where the bot is no member (`bot.reach`)
    channel_id: int
    guild_id: int | None
    message_id: int | None  # the message that carried them; None for a slash command's options
    words: str  # the user's words (an attachment's name when there are none)
    nsfw: bool  # reachable only where NSFW is allowed too


def is_picture(attachment: discord.Attachment) -> bool:
    """An attachment of a type the bot reads (its declared type; the bytes are checked again)."""
    return (attachment.content_type or "").split(";")[0].strip() in IMAGE_TYPES


async def keep_uploads(bot: EgakuBot, attachments: Sequence[discord.Attachment], where: Where) -> list[Generation]:
    """Check every attachment (a BadUpload names the problem, and nothing is kept), then record them in order."""
    services = bot.services
    if not attachments or services.history is None or services.session is None:
        return []
    session, history = services.session, services.history
    checked = await asyncio.gather(
        *(fetch_attachment(session, a.url, a.size, a.filename, extra_hosts=services.upload_hosts) for a in attachments)
    )
    kept = []
    for upload in checked:
        record = await history.add(
            upload.png,
            conversation=where.conversation,
            user_id=str(where.user_id),
            guild_id=str(where.guild_id) if where.guild_id else None,
            channel_id=str(where.channel_id),
            message_id=str(where.message_id) if where.message_id else None,
            user_words=where.words or upload.filename,
            prompt=f"(uploaded image {upload.filename})",
            negative_prompt=None,
            seed=0,
            width=upload.width,
            height=upload.height,
            steps=0,
            model="",
            kind="upload",
            nsfw=where.nsfw,
        )
        kept.append(record)
    return kept
