"""📝 Show prompt: the asker's words, the final prompt and the parameters, to the presser only."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post
from bot.render import clip
from tools.stores.history import Generation

# User-facing texts (plain constants: the catalog of issue 29 routes them).
MADE_FROM_TEXT = "**Made from:** {pictures}"
PICTURE_TEXT = "picture {number} `{id}` ({role})"
ROLE_TEXT = {"edited": "the picture edited", "reference": "a reference", "style": "a style reference"}


def made_from(generation: Generation) -> str | None:
    """The pictures an image was made from, in order, each with its role; None for one picture edited or none."""
    parents = generation.parents
    if len(parents) < 2 and all(p.role == "edited" for p in parents):
        return None  # the parameters line says "regenerate of `k3m9`"
    pictures = [PICTURE_TEXT.format(number=n, id=p.id, role=ROLE_TEXT[p.role]) for n, p in enumerate(parents, 1)]
    return MADE_FROM_TEXT.format(pictures=" · ".join(pictures))


def describe(generation: Generation) -> str:
    """The ephemeral "show prompt" text: both prompts, the parameters, and the pictures it was made from."""
    lines = [
        f"**You said:** {clip(generation.user_words, 900)}",
        f"**Prompt:** {clip(generation.prompt, 1500)}",
    ]
    if generation.negative_prompt:
        lines.append(f"**Negative:** {clip(generation.negative_prompt, 500)}")
    lineage = made_from(generation)
    lines.append(
        f"`id {generation.id}` · seed {generation.seed} · {generation.width}×{generation.height} · "
        f"{generation.steps} steps · {generation.model or 'upload'} · {generation.kind}"
        + (f" of `{generation.parent_id}`" if generation.parent_id and not lineage else "")
    )
    if lineage:
        lines.append(lineage)
    return "\n".join(lines)


async def show_prompt(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Answer the presser alone."""
    await interaction.response.send_message(describe(generation), ephemeral=True)


PROMPT = ButtonAction("prompt", "📝", "Show prompt", show_prompt)
