"""Turning a TurnResult into Discord messages within Discord's limits."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import discord

from tools.types import RenderedImage

MAX_CONTENT = 2000
MAX_EMBED_DESCRIPTION = 4096
MAX_FIELD = 1024
MAX_FOOTER = 2048
EMBED_COLOUR = 0xE8A87C


@dataclass
class Outgoing:
    """One Discord message to send."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    files: list[discord.File] = field(default_factory=list)
    view: discord.ui.View | None = None


def clip(text: str, limit: int) -> str:
    """text cut to limit characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_text(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Split text into chunks of at most limit characters, preferring line and word breaks."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def image_embed(image: RenderedImage, filename: str) -> discord.Embed:
    """The embed beside an image: the user's words, the final English prompt, the parameters."""
    embed = discord.Embed(colour=EMBED_COLOUR, description=clip(image.prompt, MAX_EMBED_DESCRIPTION))
    embed.title = "Prompt"
    embed.add_field(name="You said", value=clip(image.user_words or "—", MAX_FIELD), inline=False)
    if image.negative_prompt:
        embed.add_field(name="Negative", value=clip(image.negative_prompt, MAX_FIELD), inline=False)
    embed.set_footer(
        text=clip(f"seed {image.seed} · {image.width}×{image.height} · {image.steps} steps · {image.model}", MAX_FOOTER)
    )
    embed.set_image(url=f"attachment://{filename}")
    return embed


def compose(reply: str, images: list[RenderedImage], notice: str | None = None) -> list[Outgoing]:
    """The messages for a turn: text first (split), images with their embeds on the last one."""
    text = "\n\n".join(part for part in (reply.strip(), notice or "") if part)
    chunks = split_text(text)
    messages = [Outgoing(content=chunk) for chunk in chunks] or [Outgoing()]
    last = messages[-1]
    for index, image in enumerate(images):
        filename = f"egaku_{image.seed}_{index}.png"
        last.files.append(discord.File(io.BytesIO(image.png), filename=filename))
        last.embeds.append(image_embed(image, filename))
    return messages
