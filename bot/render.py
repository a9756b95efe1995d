"""Turning a TurnResult into Discord messages within Discord's limits."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import discord
from PIL import Image

from egaku.i18n import ENGLISH_VOICE, Value, Voice, _
from tools.pictures import RenderedImage

MAX_CONTENT = 2000
MAX_EMBED_DESCRIPTION = 4096
MAX_FIELD = 1024
MAX_FOOTER = 2048
MAX_EMBEDS_TOTAL = 6000  # for all embeds of one message together
EMBED_COLOUR = 0xE8A87C
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
# The labels around a prompt: the prompt itself stays as the model wrote it.
PROMPT, YOU_SAID, NEGATIVE = _("Prompt"), _("You said"), _("Negative")
RETRY_LABEL = _("Retry")
MAX_RETRY_BUTTONS = 5  # one row


@dataclass
class Outgoing:
    """One Discord message to send."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    files: list[discord.File] = field(default_factory=list)
    view: discord.ui.View | None = None
    images: list[RenderedImage] = field(default_factory=list)
    ephemeral: bool = False  # only the presser sees it (an interaction followup)
    voice: Voice = ENGLISH_VOICE  # the language of its embeds' labels (kept when the images are re-encoded)


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


def image_embed(image: RenderedImage, filename: str, budget: int, voice: Voice) -> discord.Embed:
    """The embed beside an image: the user's words, the final English prompt, the parameters.

    `budget` is this embed's share of the 6000 characters all embeds of a message may use.
    """
    shape: dict[str, Value] = {"seed": image.seed, "width": image.width, "height": image.height, "steps": image.steps,
             "model": image.model}  # fmt: skip
    if image.score is not None:
        footer = voice(_("seed {seed} · {width}×{height} · {steps} steps · {model} · score {score:.2f}", **shape,
                         score=image.score))  # fmt: skip
    else:
        footer = voice(_("seed {seed} · {width}×{height} · {steps} steps · {model}", **shape))
    footer = clip(footer, MAX_FOOTER)
    words = clip(image.user_words or "—", min(MAX_FIELD, budget // 4))
    negative = clip(image.negative_prompt, min(MAX_FIELD, budget // 8)) if image.negative_prompt else ""
    title, said, unwanted = voice(PROMPT), voice(YOU_SAID), voice(NEGATIVE)
    used = len(title) + len(said) + len(words) + len(footer) + (len(unwanted) + len(negative) if negative else 0)
    embed = discord.Embed(
        colour=EMBED_COLOUR, title=title, description=clip(image.prompt, min(MAX_EMBED_DESCRIPTION, budget - used))
    )
    embed.add_field(name=said, value=words, inline=False)
    if negative:
        embed.add_field(name=unwanted, value=negative, inline=False)
    embed.set_footer(text=footer)
    embed.set_image(url=f"attachment://{filename}")
    return embed


def attach(out: Outgoing, images: list[RenderedImage], encoded: list[tuple[str, bytes]], voice: Voice) -> Outgoing:
    """out with these images as files (name, bytes) and one embed each, within the embed budget."""
    budget = MAX_EMBEDS_TOTAL // max(1, len(images)) - 10
    out.files = [discord.File(io.BytesIO(data), filename=name) for name, data in encoded]
    out.embeds = [image_embed(image, name, budget, voice) for image, (name, _data) in zip(images, encoded, strict=True)]
    out.images = images
    out.voice = voice
    return out


def compose(reply: str, images: list[RenderedImage], notice: str | None, voice: Voice) -> list[Outgoing]:
    """The messages for a turn: text first (split), images with their embeds on the last one."""
    text = "\n\n".join(part for part in (reply.strip(), notice or "") if part)
    chunks = split_text(text)
    messages = [Outgoing(content=chunk) for chunk in chunks] or [Outgoing()]
    if images:
        encoded = [(f"egaku_{image.seed}_{index}.png", image.png) for index, image in enumerate(images)]
        attach(messages[-1], images, encoded, voice)
    return messages


def total_bytes(out: Outgoing) -> int:
    """The upload size of a message's files."""
    return sum(len(image.png) for image in out.images) if out.images else 0


def shrink(out: Outgoing, limit: int) -> Outgoing:
    """Re-encode (JPEG, then smaller) until the files fit `limit` bytes; blocking, run off the loop."""
    scale, quality = 1.0, 90
    while True:
        encoded = []
        for index, image in enumerate(out.images):
            picture = Image.open(io.BytesIO(image.png)).convert("RGB")
            if scale < 1.0:
                size = (max(64, int(picture.width * scale)), max(64, int(picture.height * scale)))
                picture = picture.resize(size, Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=quality)
            encoded.append((f"egaku_{image.seed}_{index}.jpg", buffer.getvalue()))
        if sum(len(data) for _, data in encoded) <= limit or scale < 0.2:
            again = Outgoing(content=out.content, view=out.view, ephemeral=out.ephemeral)
            return attach(again, out.images, encoded, out.voice)
        scale, quality = scale * 0.7, max(70, quality - 5)


def retry_button(job_id: str, voice: Voice = ENGLISH_VOICE) -> discord.ui.Button[discord.ui.View]:
    """The Retry button of a journaled job that failed; its custom_id is all its state (`bot.retry.RetryButton`)."""
    return discord.ui.Button(
        label=voice(RETRY_LABEL), emoji="🔁", style=discord.ButtonStyle.primary, custom_id=f"egaku:retry:{job_id}"
    )


def with_retry(outgoing: list[Outgoing], retries: list[str], voice: Voice) -> list[Outgoing]:
    """A Retry button under the answer for each failed job that may be tried again, unless it has other buttons."""
    if outgoing and outgoing[-1].view is None and retries:
        view = discord.ui.View(timeout=None)
        for job_id in retries[:MAX_RETRY_BUTTONS]:
            view.add_item(retry_button(job_id, voice))
        outgoing[-1].view = view
    return outgoing
