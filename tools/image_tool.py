"""The `generate_image` tool. Its docstring and field descriptions are the model's instructions."""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, ToolException, tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from egaku.errors import EgakuError, WorkerRejected
from tools.context import TurnContext
from worker.protocol import MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, MAX_SEED, Aspect, GenerationRequest

log = logging.getLogger(__name__)


PromptText = Annotated[
    str,
    Field(
        min_length=3,
        max_length=MAX_PROMPT_CHARS,
        description=(
            "ONE detailed description of the picture, in English, about 40-80 words: "
            "subject, setting, composition, lighting, colours, medium and style. "
            "Translate the user's words into English; keep any text they quoted verbatim."
        ),
    ),
]
NegativeText = Annotated[
    str | None,
    Field(max_length=MAX_NEGATIVE_CHARS, description="Things to keep out of the picture, in English, comma-separated."),
]
AspectChoice = Annotated[
    Aspect, Field(description="Aspect ratio: 1:1 square, 3:2 or 16:9 landscape, 2:3 or 9:16 portrait.")
]
SeedNumber = Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Only when the user asks for a specific seed.")]


class GenerateImageArgs(BaseModel):
    """Arguments of generate_image, bounded like the worker's protocol."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptText
    negative_prompt: NegativeText = None
    aspect: AspectChoice = "1:1"
    seed: SeedNumber = None


def build_request(args: GenerateImageArgs, context: TurnContext) -> GenerationRequest:
    """The worker request for validated tool arguments (validated again here)."""
    return GenerationRequest(
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        aspect=args.aspect,
        seed=args.seed,
        model=context.model,
        user=context.user_id,
    )


async def render(args: GenerateImageArgs, context: TurnContext) -> tuple[str, dict[str, object]]:
    """Render and file the images into the turn; return the model's text and an artifact."""
    try:
        request = build_request(args, context)
        images = await context.backend.generate(request, context.user_words)
    except ValidationError as exc:
        raise ToolException(f"Invalid arguments: {exc.errors()[0]['msg']}. Fix them and call again.") from exc
    except WorkerRejected as exc:
        raise ToolException(f"The image service refused: {exc}. Adjust the arguments once, or explain.") from exc
    except EgakuError as exc:
        # Not the model's fault and not fixable by retrying now: the bot tells the
        # user with a fixed message; the model only needs to stop.
        context.failures.append(exc)
        return ("The image could not be made (service problem). Apologise in one short sentence; do not retry.", {})
    context.images.extend(images)
    first = images[0]
    text = (
        f"Done: {len(images)} image(s) drawn ({first.summary()}) and attached to your reply. "
        "Reply in one or two short sentences in the user's language; do not repeat the prompt or describe files."
    )
    return text, {"seeds": [i.seed for i in images], "prompt": args.prompt}


@tool("generate_image", response_format="content_and_artifact")
async def generate_image(
    prompt: PromptText,
    runtime: ToolRuntime[Any],
    negative_prompt: NegativeText = None,
    aspect: AspectChoice = "1:1",
    seed: SeedNumber = None,
) -> tuple[str, dict[str, object]]:
    """Draw a NEW picture. Call this only when the user asks for an image, drawing, photo,
    painting or illustration (in any language). Write `prompt` as one detailed English
    description (about 40-80 words) of the whole picture: subject, setting, composition,
    lighting, colours, medium and style. Translate other languages into English, keep text
    the user quoted verbatim, and never name artists who worked after 1912: describe the
    movement, era and medium instead. Call it once per request."""
    args = GenerateImageArgs(prompt=prompt, negative_prompt=negative_prompt, aspect=aspect, seed=seed)
    context = cast(TurnContext, runtime.context)
    return await render(args, context)


def image_tools() -> list[BaseTool]:
    """The tools the agent gets."""
    return [generate_image]
