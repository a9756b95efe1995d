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
from bot.language import interaction_voice
from bot.policy import channel_refusal, policy_for
from bot.render import EMBED_COLOUR, PROMPT, Outgoing, clip
from egaku.errors import report
from egaku.i18n import Voice, _
from tools.checks.uploads import fetch_attachment
from tools.service.requests import ImageOptions
from worker.protocol import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.client import EgakuBot

TITLE = _("A prompt for your picture")
IMAGINE_THIS = _("Imagine this")
NO_WORKER = _("Describing pictures needs the image worker, and this bot has none connected.")


class Describe(commands.Cog):
    """The /describe slash command."""

    def __init__(self, bot: EgakuBot) -> None:
        self.bot = bot

    @app_commands.command(name="describe", description="Write an English prompt for a picture you upload")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(image="The picture to describe (PNG, JPEG, WebP or GIF)")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """Check the upload's type, defer, fetch it safely, ask the worker for words, post them."""
        if not self.bot.seen.first_time(f"interaction:{interaction.id}"):
            return
        services = self.bot.services
        voice = interaction_voice(self.bot, interaction)
        policy = await policy_for(self.bot, interaction.guild_id)
        problem = channel_refusal(policy, interaction.channel_id or 0)
        if (image.content_type or "").split(";")[0] not in IMAGE_TYPES:
            problem = problem or NOT_AN_IMAGE
        if services.worker is None or services.session is None:
            problem = problem or NO_WORKER
        if problem:
            await interaction.response.send_message(voice(problem), ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        assert services.worker is not None and services.session is not None
        try:
            upload = await fetch_attachment(
                services.session, image.url, image.size, image.filename, extra_hosts=services.upload_hosts
            )
            prompt = await services.worker.describe(upload.png)
        except Exception as exc:
            await interaction.followup.send(report(exc, "/describe", voice), ephemeral=True)
            return
        await followup(interaction, [described(prompt, image.url, voice)], "/describe", voice)


def described(prompt: str, image_url: str, voice: Voice) -> Outgoing:
    """The answer: the prompt in an embed beside the picture, and the "Imagine this" button."""
    embed = discord.Embed(title=voice(TITLE), description=clip(prompt, MAX_PROMPT_CHARS), colour=EMBED_COLOUR)
    embed.set_thumbnail(url=image_url)
    view = ui.View(timeout=None)
    view.add_item(ImagineThis(voice(IMAGINE_THIS)))
    view.stop()  # the state is in the message; nothing is kept in memory
    return Outgoing(embeds=[embed], view=view, voice=voice)


class ImagineThis(ui.DynamicItem[ui.Button[Any]], template=r"egaku:imagine-this"):
    """Opens the prompt of the message it sits under in a modal; submitting it draws."""

    def __init__(self, label: str = str(IMAGINE_THIS)) -> None:
        button: ui.Button[Any] = ui.Button(
            label=label, emoji="🎨", style=discord.ButtonStyle.primary, custom_id="egaku:imagine-this"
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
        bot: EgakuBot = interaction.client  # type: ignore[assignment]
        voice = interaction_voice(bot, interaction)
        embeds = interaction.message.embeds if interaction.message else []
        # The title is in the language of whoever asked for the description.
        titled = embeds and embeds[0].title in bot.services.catalogs.every(TITLE)
        prompt = embeds[0].description if titled else None
        if not prompt:
            lost = _("I can't find the prompt on that message any more.")
            await interaction.response.send_message(voice(lost), ephemeral=True)
            return
        await interaction.response.send_modal(ImagineModal(prompt, voice))


class ImagineModal(ui.Modal):
    """The described prompt, editable, drawn like /imagine."""

    def __init__(self, prompt: str, voice: Voice) -> None:
        super().__init__(title=voice(IMAGINE_THIS), timeout=600)
        self.prompt: ui.TextInput[ImagineModal] = ui.TextInput(
            label=voice(PROMPT), style=discord.TextStyle.paragraph, default=prompt, max_length=MAX_PROMPT_CHARS
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
