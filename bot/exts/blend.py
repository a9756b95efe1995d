"""/blend: a new picture from 2 to 5 pictures, with an optional prompt and a shape, like Midjourney's.

The pictures are kept as uploads (checked like any attachment), then the preset that reads
several pictures ([agent] reference_model) draws one picture from them, in order. The prompt,
if any, goes to the model as written (as `/imagine raw` does); without one, a fixed description
asks for the pictures blended. The result carries the usual buttons: a reroll draws from the
same pictures with a new seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from agent.service import TurnResult
from bot.answering import interaction_answer, opened
from bot.buttons.view import send_result
from bot.choices import ASPECTS, NOT_AN_IMAGE
from bot.language import interaction_voice
from bot.policy import command_refusal, here
from bot.reach import conversation_of
from bot.turns import interaction_turn
from bot.uploads import Where, is_picture, keep_uploads
from egaku.errors import BadUpload
from egaku.i18n import _
from tools.service.requests import Draw, ImageOptions
from worker.protocol import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.client import EgakuBot

BLEND_DESCRIPTION = "Blend 2 to 5 pictures into a new one"  # the translator localizes it with the command
# What the model is asked for when the user gives no prompt; "{pictures}" is "picture 1, picture 2 and picture 3".
BLEND_PROMPT = (
    "One new picture that blends {pictures} into a single coherent scene: their subjects, shapes, colours and "
    "styles merged naturally."
)
NO_UPLOADS_TEXT = _("Blending needs the image history, and this bot has none.")
Picture = discord.Attachment | None


def blend_prompt(count: int) -> str:
    """The description sent when the user writes none: every picture named by its place."""
    names = [f"picture {n}" for n in range(1, count + 1)]
    return BLEND_PROMPT.format(pictures=f"{', '.join(names[:-1])} and {names[-1]}")


class Blend(commands.Cog):
    """The /blend slash command."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="blend", description=BLEND_DESCRIPTION)
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        image1="The first picture", image2="The second picture", aspect="Shape of the new picture",
        image3="Another picture (optional)", image4="Another picture (optional)",
        image5="Another picture (optional)",
        prompt="What to make of them, naming them 'picture 1', 'picture 2'... (optional)",
    )  # fmt: skip
    @app_commands.choices(
        aspect=[app_commands.Choice(name=f"{label} ({value})", value=value) for value, label in ASPECTS.items()]
    )
    async def blend(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        aspect: str | None = None,  # Midjourney's /blend order: two pictures, the shape, then the optional pictures
        image3: Picture = None,
        image4: Picture = None,
        image5: Picture = None,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS] | None = None,
    ) -> None:
        """Check what can refuse, defer, keep the pictures as uploads, draw one picture from them, post it."""
        bot = self.bot
        voice = interaction_voice(bot, interaction)
        if not bot.seen.first_time(f"interaction:{interaction.id}"):
            return  # a replay: the first delivery is already being answered
        attached = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        problem = await command_refusal(bot, interaction)
        if not problem and not all(is_picture(a) for a in attached):
            problem = NOT_AN_IMAGE
        if not problem and (bot.services.history is None or bot.services.session is None):
            problem = NO_UPLOADS_TEXT
        if problem:
            await interaction.response.send_message(voice(problem), ephemeral=True)
            return
        deferred = await interaction.response.defer(thinking=True)
        place = await here(bot, interaction.user.id, interaction.guild_id, interaction.channel)
        words = prompt or ""
        where = Where(
            user_id=interaction.user.id,
            conversation=conversation_of(bot, interaction),
            channel_id=interaction.channel_id or 0,
            guild_id=interaction.guild_id,
            message_id=None,
            words=words,
            nsfw=place.nsfw,
        )
        try:
            uploads = await keep_uploads(bot, attached, where)
        except BadUpload as exc:
            await interaction.followup.send(voice(exc.text))
            return
        # "You said" under a blend that came with no prompt, in the asker's words' language.
        said = words or voice(_("/blend of {count} pictures", count=len(uploads)))
        answer = interaction_answer(interaction, deferred)
        turn = interaction_turn(bot, interaction, place, said, chosen=ImageOptions(aspect=aspect), answer=answer)
        await opened(bot, answer)  # from here the command is answered exactly once, after a restart if need be
        request = Draw(prompt or blend_prompt(len(uploads)), aspect=aspect, references=tuple(u.id for u in uploads))
        result = TurnResult.direct(await bot.services.images.draw(turn.who, request))
        await send_result(interaction, result, "/blend")


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Blend(bot))
