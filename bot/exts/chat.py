"""Chat: mentions, replies to the bot, and DMs go to the agent; every attached picture becomes an upload, in order."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from agent.replies import normalise_input
from agent.service import with_attachment
from bot.answering import message_answer, opened, reply_once, settled
from bot.buttons.view import result_messages
from bot.language import message_voice
from bot.policy import Here, here, missing_permissions
from bot.progress import cancel_jobs, is_cancel, reporter
from bot.reach import conversation_id
from bot.render import Outgoing
from bot.turns import turn_request
from bot.uploads import Where, keep_uploads
from egaku.errors import BadUpload, EmptyMessage, LLMUnclear, failure_notice, report
from egaku.i18n import Text, Voice, _

if TYPE_CHECKING:
    from bot.client import EgakuBot

log = logging.getLogger(__name__)

NO_CONTENT_TEXT = _(
    "I can't read the text of messages here. The bot's operator needs to enable the "
    "**Message Content** intent (Discord Developer Portal → Bot → Privileged Gateway Intents). "
    "Meanwhile, `/imagine` works."
)
EMPTY_TEXT = EmptyMessage().text
UPLOAD_ONLY_TEXT = _("Got your image! Tell me what to change, for example: `make this a watercolour`.")
NOTHING_TO_CANCEL = _("There's nothing of yours to cancel here.")
CANCELLING = _("Cancelling your picture.")


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
        """The message text without the bot's mention, zero-width and format characters, or extra spaces."""
        me = self.bot.user
        text = message.content
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", "", text)
        return normalise_input(text)

    async def take_uploads(self, message: discord.Message, text: str, nsfw: bool) -> list[str]:
        """Record every image attachment as an upload, in order; the model then sees them in the history."""
        where = Where(
            user_id=message.author.id,
            conversation=conversation_id(message.channel.id),
            channel_id=message.channel.id,
            guild_id=message.guild.id if message.guild else None,
            message_id=message.id,
            words=text,
            nsfw=nsfw,
        )
        pictures = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
        return [record.id for record in await keep_uploads(self.bot, pictures, where)]

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer an addressed message: text, or an image with its prompts, in the writer's language."""
        if not self.addressed(message):
            return
        perms = None
        if message.guild is not None:
            perms = message.channel.permissions_for(message.guild.me)  # type: ignore[union-attr,arg-type]
            if not perms.send_messages:
                log.warning("cannot answer in channel %s: no Send Messages permission", message.channel.id)
                return
        text = self.words(message)
        place = await here(self.bot, message.author.id, message.guild.id if message.guild else None, message.channel)
        voice = message_voice(self.bot, message, place.prefs.language, text)

        async def say(fixed: Text) -> None:
            await message.reply(voice(fixed), mention_author=False)

        problem = missing_permissions(perms) if perms is not None else None
        refusal = problem or place.refusal(message.channel.id)
        if refusal:
            await say(refusal)
            return
        try:
            upload_ids = await self.take_uploads(message, text, place.nsfw)
        except BadUpload as exc:
            await say(exc.text)
            return
        if not text:
            if upload_ids:
                await say(UPLOAD_ONLY_TEXT)
            elif not message.content and not self.bot.message_content:
                log.warning("empty message content: is the Message Content intent enabled?")
                await say(NO_CONTENT_TEXT)
            else:
                await say(EMPTY_TEXT)
            return
        if is_cancel(text) and not upload_ids:
            mine = self.bot.jobs.of(message.author.id, message.channel.id)
            if not mine:
                await say(NOTHING_TO_CANCEL)
                return
            await cancel_jobs(self.bot, mine)
            await say(CANCELLING)
            return
        await self.answer(message, text, upload_ids, place, voice)

    async def answer(
        self, message: discord.Message, text: str, upload_ids: list[str], place: Here, voice: Voice
    ) -> None:
        """The agent's turn for the message, posted as replies with the pictures and their buttons."""
        if upload_ids:
            text = with_attachment(text, *upload_ids)
        answer = message_answer(message, voice)
        if message.reference is not None:
            # A reply to the bot's picture can arrive before the bot has linked that picture to its message.
            await settled(self.bot, answer.channel_id)
        turn = turn_request(
            place,
            message.author,
            conversation=conversation_id(message.channel.id),
            channel_id=message.channel.id,
            guild_id=message.guild.id if message.guild else None,
            source_id=message.id,
            text=text,
            watch=reporter(self.bot, message.channel.send, message.author.id, message.channel.id, voice),
            reply_to=message.reference.message_id if message.reference else None,
            answer=answer,
        )
        # From here the message is answered exactly once, after a restart if need be.
        await opened(self.bot, answer, ask=turn)
        try:
            async with message.channel.typing():
                result = await self.bot.services.agent.respond(turn)
        except Exception as exc:
            await reply_once(self.bot, message, [Outgoing(content=report(exc, "chat", voice))], answer)
            return
        notice = failure_notice(result.failures, "chat", voice)
        reply = result.said(voice)
        if not (reply or result.images or notice):
            # Never an empty or "…" message: an answer with nothing in it is an unclear request.
            notice = report(LLMUnclear("the turn ended with nothing to show"), "chat", voice)
        outgoing = await result_messages(self.bot, result, notice, voice)
        await reply_once(self.bot, message, outgoing, answer, shown=result)


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Chat(bot))
