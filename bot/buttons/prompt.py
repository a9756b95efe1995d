"""📝 Show prompt: the asker's words, the final prompt and the parameters, to the presser only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.buttons.action import ButtonAction, Post
from bot.language import interaction_voice
from bot.render import NEGATIVE, YOU_SAID, clip
from bot.render import PROMPT as PROMPT_LABEL
from egaku.i18n import Text, Value, Voice, _
from tools.pictures import ImageKind
from tools.stores.history import Generation

if TYPE_CHECKING:
    from bot.client import EgakuBot


# What made a picture, as the history names it ("strong": a strong variation of its parent).
KINDS: dict[ImageKind, Text] = {
    "generate": _("generate"), "upload": _("upload"), "regenerate": _("regenerate"), "subtle": _("subtle"),
    "strong": _("strong"), "region": _("region"), "instruct": _("instruct"), "zoom": _("zoom"), "pan": _("pan"),
    "upscale": _("upscale"), "reference": _("reference"), "blend": _("blend"),
}  # fmt: skip
# A parent's part in what was made from it.
ROLES = {"edited": _("the picture edited"), "reference": _("a reference"), "style": _("a style reference")}


def made_from(generation: Generation, voice: Voice) -> str | None:
    """The pictures an image was made from, in order, each with its role; None for one picture edited or none."""
    parents = generation.parents
    if len(parents) < 2 and all(p.role == "edited" for p in parents):
        return None  # the parameters line says "regenerate of `k3m9`"
    pictures = [voice(_("picture {number} `{id}` ({role})", number=n, id=p.id, role=ROLES[p.role]))
                for n, p in enumerate(parents, 1)]  # fmt: skip
    return voice(_("**Made from:** {pictures}", pictures=" · ".join(pictures)))


def describe(generation: Generation, voice: Voice) -> str:
    """The ephemeral "show prompt" text: both prompts (as the model wrote them), the parameters, and the pictures
    it was made from."""
    lines = [
        f"**{voice(YOU_SAID)}:** {clip(generation.user_words, 900)}",
        f"**{voice(PROMPT_LABEL)}:** {clip(generation.prompt, 1500)}",
    ]
    if generation.negative_prompt:
        lines.append(f"**{voice(NEGATIVE)}:** {clip(generation.negative_prompt, 500)}")
    lineage = made_from(generation, voice)
    kind = KINDS.get(generation.kind)
    shape: dict[str, Value] = {
        "id": generation.id, "seed": generation.seed, "width": generation.width, "height": generation.height,
        "steps": generation.steps, "model": generation.model or voice(KINDS["upload"]),
        "kind": voice(kind) if kind else generation.kind,
    }  # fmt: skip
    if generation.parent_id and not lineage:
        line = _("`id {id}` · seed {seed} · {width}×{height} · {steps} steps · {model} · {kind} of `{parent}`",
                 **shape, parent=generation.parent_id)  # fmt: skip
    else:
        line = _("`id {id}` · seed {seed} · {width}×{height} · {steps} steps · {model} · {kind}", **shape)
    lines.append(voice(line))
    if lineage:
        lines.append(lineage)
    return "\n".join(lines)


async def show_prompt(interaction: discord.Interaction, generation: Generation, post: Post) -> None:
    """Answer the presser alone."""
    bot: EgakuBot = interaction.client  # type: ignore[assignment]
    await interaction.response.send_message(describe(generation, interaction_voice(bot, interaction)), ephemeral=True)


PROMPT = ButtonAction("prompt", "📝", _("Show prompt"), show_prompt)
