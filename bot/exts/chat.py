"""Chat: mentions, replies to the bot, and DMs go to the agent."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from agent.service import TurnRequest
from bot.deliver import reply_to
from bot.render import compose
from egaku.errors import failure_notice, report

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

NO_CONTENT_TEXT = (
    "I can't read the text of messages here. The bot's operator needs to enable the "
    "**Message Content** intent (Discord Developer Portal → Bot → Privileged Gateway Intents). "
    "Meanwhile, `/imagine` works."
)
EMPTY_TEXT = "Hi! Tell me what to draw, for example: `@egaku draw a squirrel king on a throne`."


def conversation_id(message: discord.Message) -> str:
    """A channel, a thread or a DM is one conversation."""
    return f"discord:{message.channel.id}"


class Chat(commands.Cog):
    """Turns addressed messages into agent turns."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    def addressed(self, message: discord.Message) -> bool:
        """A DM, a mention of the bot, or a reply to one of its messages."""
        me = self.bot.user
        if me is None or message.author.bot:
            return False
        if message.guild is None:
            return True
        if any(user.id == me.id for user in message.mentions):
            return True
        ref = message.reference.resolved if message.reference else None
        return isinstance(ref, discord.Message) and ref.author.id == me.id

    def words(self, message: discord.Message) -> str:
        """The message text without the bot's mention."""
        me = self.bot.user
        text = message.content
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", "", text)
        return text.strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer an addressed message: text, or an image with its prompts."""
        if not self.addressed(message):
            return
        text = self.words(message)
        if not text:
            if not message.content and not self.bot.message_content:
                log.warning("empty message content: is the Message Content intent enabled?")
                await message.reply(NO_CONTENT_TEXT, mention_author=False)
            else:
                await message.reply(EMPTY_TEXT, mention_author=False)
            return
        turn = TurnRequest(
            conversation_id=conversation_id(message),
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            text=text,
        )
        try:
            async with message.channel.typing():
                result = await self.bot.services.agent.respond(turn)
        except Exception as exc:
            await message.reply(report(exc, "chat"), mention_author=False)
            return
        notice = failure_notice(result.failures, "chat")
        reply = result.reply or ("" if result.images or notice else "…")
        await reply_to(message, compose(reply, result.images, notice))


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Chat(bot))
