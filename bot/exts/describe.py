"""/describe: a picture in, an English prompt out (the worker's captioner), then "Imagine this"."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands, ui
from discord.ext import commands

from bot.choices import IMAGE_TYPES, NOT_AN_IMAGE
from bot.deliver import followup
from bot.imagining import imagine_for
from bot.policy import channel_refusal, policy_for
from bot.render import EMBED_COLOUR, Outgoing, clip
from egaku.errors import report
from tools.checks.uploads import fetch_attachment
from tools.service.requests import ImageOptions
from worker.protocol import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.client import EgakuBot

TITLE = "A prompt for your picture"


class Describe(commands.Cog):
    """The /describe slash command."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="describe", description="Write an English prompt for a picture you upload")
    @app_commands.describe(image="The picture to describe (PNG, JPEG, WebP or GIF)")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """Check the upload's type, defer, fetch it safely, ask the worker for words, post them."""
        if not self.bot.seen.first_time(f"interaction:{interaction.id}"):
            return
        services = self.bot.services
        policy = await policy_for(self.bot, interaction.guild_id)
        problem = channel_refusal(policy, interaction.channel_id or 0)
        if (image.content_type or "").split(";")[0] not in IMAGE_TYPES:
            problem = problem or NOT_AN_IMAGE
        if services.worker is None or services.session is None:
            problem = problem or "Describing pictures needs the image worker, and this bot has none connected."
        if problem:
            await interaction.response.send_message(problem, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        assert services.worker is not None and services.session is not None
        try:
            upload = await fetch_attachment(
                services.session, image.url, image.size, image.filename, extra_hosts=services.upload_hosts
            )
            prompt = await services.worker.describe(upload.png)
        except Exception as exc:
            await interaction.followup.send(report(exc, "/describe"), ephemeral=True)
            return
        await followup(interaction, [described(prompt, image.url)], "/describe")


def described(prompt: str, image_url: str) -> Outgoing:
    """The answer: the prompt in an embed beside the picture, and the "Imagine this" button."""
    embed = discord.Embed(title=TITLE, description=clip(prompt, MAX_PROMPT_CHARS), colour=EMBED_COLOUR)
    embed.set_thumbnail(url=image_url)
    view = ui.View(timeout=None)
    view.add_item(ImagineThis())
    view.stop()  # the state is in the message; nothing is kept in memory
    return Outgoing(embeds=[embed], view=view)


class ImagineThis(ui.DynamicItem[ui.Button[Any]], template=r"egaku:imagine-this"):
    """Opens the prompt of the message it sits under in a modal; submitting it draws."""

    def __init__(self) -> None:
        button: ui.Button[Any] = ui.Button(
            label="Imagine this", emoji="🎨", style=discord.ButtonStyle.primary, custom_id="egaku:imagine-this"
        )
        super().__init__(button)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ImagineThis:
        """Rebuild after a restart: the prompt is read from the message, not kept here."""
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Anyone may draw a described prompt: open it, editable, in a modal."""
        embeds = interaction.message.embeds if interaction.message else []
        prompt = embeds[0].description if embeds and embeds[0].title == TITLE else None
        if not prompt:
            await interaction.response.send_message("I can't find the prompt on that message any more.", ephemeral=True)
            return
        await interaction.response.send_modal(ImagineModal(prompt))


class ImagineModal(ui.Modal, title="Imagine this"):
    """The described prompt, editable, drawn like /imagine."""

    def __init__(self, prompt: str) -> None:
        super().__init__(timeout=600)
        self.prompt: ui.TextInput[ImagineModal] = ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, default=prompt, max_length=MAX_PROMPT_CHARS
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Draw it."""
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        await imagine_for(bot, interaction, self.prompt.value, ImageOptions())


async def setup(bot: EgakuBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Describe(bot))
    bot.add_dynamic_items(ImagineThis)
