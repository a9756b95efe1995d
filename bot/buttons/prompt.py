"""📝 Show prompt: the asker's words, the final prompt and the parameters, to the presser only."""

from __future__ import annotations

import discord

from bot.buttons.action import ButtonAction, Post
from bot.render import clip
from tools.stores.history import Generation


def describe(generation: Generation) -> str:
    """The ephemeral "show prompt" text: both prompts and the parameters."""
    lines = [
        f"**You said:** {clip(generation.user_words, 900)}",
        f"**Prompt:** {clip(generation.prompt, 1500)}",
    ]
    if generation.negative_prompt:
        lines.append(f"**Negative:** {clip(generation.negative_prompt, 500)}")
    lines.append(
        f"`id {generation.id}` · seed {generation.seed} · {generation.width}×{generation.height} · "
        f"{generation.steps} steps · {generation.model or 'upload'} · {generation.kind}"
        + (f" of `{generation.parent_id}`" if generation.parent_id else "")
    )
    return "\n".join(lines)


async def show_prompt(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Answer the presser alone."""
    await interaction.response.send_message(describe(generation), ephemeral=True)


PROMPT = ButtonAction("prompt", "📝", "Show prompt", show_prompt)
