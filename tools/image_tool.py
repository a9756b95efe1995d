"""The `generate_image` tool. Its docstring and field descriptions are the model's instructions."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any, Literal, cast

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, ToolException, tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from egaku.errors import EgakuError, WorkerRejected
from tools.context import ProgressCallback, TurnContext
from tools.history import AuditRecord, UnknownImage
from tools.types import RenderedImage
from worker.protocol import MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, MAX_SEED, Aspect, EditRequest, GenerationRequest

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
    """The worker request for validated tool arguments (validated again here); the user's options win."""
    fields: dict[str, object] = {
        "prompt": args.prompt,
        "negative_prompt": args.negative_prompt,
        "aspect": args.aspect,
        "seed": args.seed,
        "model": context.model,
        "user": context.user_id,
        "safety_check": context.safety_check or None,
    }
    fields = context.options.apply(fields)
    return GenerationRequest.model_validate({k: v for k, v in fields.items() if v is not None})


class Blocked(EgakuError):
    """The final prompt breaks this channel's safety policy."""


class Refusal(ToolException):
    """A request the model (or the user) can fix; `reason` is safe to show the user."""

    def __init__(self, for_model: str, reason: str) -> None:
        super().__init__(for_model)
        self.reason = reason


async def keep(images: list[RenderedImage], context: TurnContext, kind: str, parent: str | None) -> list[RenderedImage]:
    """Record images in the history (when there is one) and return them with their ids."""
    if context.history is None:
        return [replace(i, kind=kind, parent_id=parent) for i in images]
    kept = []
    for image in images:
        record = await context.history.add(
            image.png,
            conversation=context.conversation,
            user_id=context.user_id,
            guild_id=context.guild_id,
            channel_id=context.channel_id,
            user_words=context.user_words,
            prompt=image.prompt,
            negative_prompt=image.negative_prompt,
            seed=image.seed,
            width=image.width,
            height=image.height,
            steps=image.steps,
            model=image.model,
            kind=kind,
            parent_id=parent,
        )
        kept.append(replace(image, id=record.id, kind=kind, parent_id=parent))
    return kept


@contextlib.asynccontextmanager
async def watching(context: TurnContext) -> AsyncIterator[tuple[str, ProgressCallback | None]]:
    """A job id (also the worker's idempotency key) and, when someone watches, a progress callback."""
    job_id = uuid.uuid4().hex[:16]
    watch = context.watch
    if watch is None:
        yield job_id, None
        return
    await watch.started(job_id)
    try:
        yield job_id, functools.partial(watch.progress, job_id)
    finally:
        await watch.finished(job_id)


def check_safety(context: TurnContext, prompt: str) -> None:
    """Refuse a final prompt that uses a blocked word here (outside NSFW channels)."""
    for word in context.blocklist:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", prompt, flags=re.IGNORECASE):
            raise Blocked("that isn't allowed in this channel")


async def watched_generate(context: TurnContext, request: GenerationRequest) -> list[RenderedImage]:
    """Generate, with a job id and progress."""
    check_safety(context, request.prompt)
    async with watching(context) as (job_id, on_progress):
        request = request.model_copy(update={"job_id": job_id})
        return await context.backend.generate(request, context.user_words, on_progress)


async def watched_edit(context: TurnContext, request: EditRequest, image: bytes) -> list[RenderedImage]:
    """Edit, with a job id and progress."""
    check_safety(context, request.prompt)
    async with watching(context) as (job_id, on_progress):
        request = request.model_copy(update={"job_id": job_id})
        return await context.backend.edit(request, image, context.user_words, None, on_progress)


async def run_tool(
    context: TurnContext, work: Callable[[], Awaitable[list[RenderedImage]]]
) -> tuple[str, dict[str, object]]:
    """Run a render within the user's caps, audit it, translate its errors, and file the images."""
    started = time.monotonic()
    try:
        if context.limiter is None:
            images = await work()
        else:
            async with context.limiter.slot(context.user_id, context.guild_id, context.guild_cap):
                images = await work()
    except ValidationError as exc:
        await audit(context, started, "invalid", [])
        raise ToolException(f"Invalid arguments: {exc.errors()[0]['msg']}. Fix them and call again.") from exc
    except (WorkerRejected, UnknownImage, Blocked) as exc:
        await audit(context, started, type(exc).__name__, [], verdict="blocked" if isinstance(exc, Blocked) else None)
        raise Refusal(f"Refused: {exc}. Adjust the arguments once, or ask the user.", reason=str(exc)) from exc
    except EgakuError as exc:
        # Not the model's fault and not fixable by retrying now: the bot tells the
        # user with a fixed message; the model only needs to stop.
        await audit(context, started, type(exc).__name__, [])
        context.failures.append(exc)
        return ("The image could not be made (service problem). Apologise in one short sentence; do not retry.", {})
    await audit(context, started, "ok", images)
    context.images.extend(images)
    first = images[0]
    ids = ", ".join(i.id for i in images if i.id)
    text = (
        f"Done: {len(images)} image(s) drawn ({first.summary()}{', id ' + ids if ids else ''}) and attached to your "
        "reply. Reply in one or two short sentences in the user's language; do not repeat the prompt or describe files."
    )
    return text, {"seeds": [i.seed for i in images], "ids": [i.id for i in images]}


async def audit(
    context: TurnContext, started: float, outcome: str, images: list[RenderedImage], verdict: str | None = None
) -> None:
    """One audit record per job: who, where, their words, the final prompt, parameters, outcome, time."""
    if context.history is None:
        return
    parameters = [
        {"seed": i.seed, "width": i.width, "height": i.height, "steps": i.steps, "guidance": i.guidance,
         "model": i.model, "negative_prompt": i.negative_prompt, "kind": i.kind, "parent_id": i.parent_id}
        for i in images
    ]  # fmt: skip
    await context.history.audit(
        AuditRecord(
            user_id=context.user_id,
            user_words=context.user_words,
            parameters=json.dumps(parameters, ensure_ascii=False),
            outcome=outcome,
            seconds=round(time.monotonic() - started, 3),
            guild_id=context.guild_id,
            channel_id=context.channel_id,
            source_id=context.source_id,
            final_prompt=images[0].prompt if images else None,
            verdict=verdict or ("checked" if context.blocklist else "nsfw-channel"),
            image_ids=",".join(i.id for i in images if i.id),
        )
    )


async def render(args: GenerateImageArgs, context: TurnContext) -> tuple[str, dict[str, object]]:
    """Draw a new image for validated arguments."""

    async def work() -> list[RenderedImage]:
        images = await watched_generate(context, build_request(args, context))
        return await keep(images, context, "generate", None)

    return await run_tool(context, work)


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


EditMode = Literal["regenerate", "subtle", "strong", "region", "instruct"]
STRENGTH = {"subtle": 0.35, "strong": 0.7, "region": 0.95}
UPSCALE_STRENGTH = 0.3  # an upscale redraws detail at the larger size but keeps the picture


async def edit(
    context: TurnContext,
    ref: str,
    prompt: str,
    mode: EditMode,
    target: str | None,
    seed: int | None,
    scale: float = 1.0,
) -> tuple[str, dict[str, object]]:
    """Change an earlier image (resolved from ref), keeping its seed, size and model unless told otherwise.

    `scale` enlarges the result (upscale buttons), within the protocol's bounds.
    """

    async def work() -> list[RenderedImage]:
        if context.history is None:
            raise UnknownImage("there is no image history here")
        parent = await context.history.resolve(ref, context.conversation, context.user_id, context.reply_to)
        chosen = mode
        if chosen == "regenerate" and parent.kind == "upload":
            chosen = "strong"  # an upload has no seed to redraw from
        if chosen == "region" and not target:
            raise UnknownImage("a region edit needs `target`: the words for the part to change")
        if chosen == "instruct" and not context.instruct_model:
            raise UnknownImage("instruction edits are not set up here; use region, subtle or strong")
        common = {
            "prompt": prompt,
            "negative_prompt": parent.negative_prompt,
            "seed": parent.seed if seed is None else seed,
            "size": f"{round(parent.width * scale / 8) * 8}x{round(parent.height * scale / 8) * 8}",
            "user": context.user_id,
            "safety_check": context.safety_check or None,
        }
        model = parent.model if parent.kind != "upload" else context.model
        if chosen == "regenerate":
            given = {**common, "model": model, "steps": parent.steps}
            request = GenerationRequest.model_validate({k: v for k, v in given.items() if v is not None})
            images = await watched_generate(context, request)
        else:
            fields: dict[str, object] = {**common, "model": context.instruct_model if chosen == "instruct" else model}
            if chosen != "instruct":
                fields["strength"] = STRENGTH[chosen] if scale == 1.0 else UPSCALE_STRENGTH
            if chosen == "region":
                fields["mask_prompt"] = target
            edit_request = EditRequest.model_validate({k: v for k, v in fields.items() if v is not None})
            images = await watched_edit(context, edit_request, context.history.png(parent))
        return await keep(images, context, chosen, parent.id)

    return await run_tool(context, work)


RefText = Annotated[
    str,
    Field(
        max_length=200,
        description=(
            "Which image: its id, 'last', 'reply' (the image the user replied to), "
            "an ordinal like 'second', or a few words from its prompt."
        ),
    ),
]
ModeChoice = Annotated[
    EditMode,
    Field(
        description=(
            "regenerate: same seed, new description (changes to the whole scene: 'make it night'). "
            "subtle / strong: keep the picture, vary it a little / a lot (e.g. 'as a watercolour'). "
            "region: repaint only `target`, keep everything else. instruct: an instruction-following edit."
        )
    ),
]
TargetText = Annotated[
    str | None,
    Field(max_length=200, description="region mode: the part to change, in English, e.g. 'the squirrel king'."),
]


@tool("edit_image", response_format="content_and_artifact")
async def edit_image(
    ref: RefText,
    prompt: PromptText,
    runtime: ToolRuntime[Any],
    mode: ModeChoice = "regenerate",
    target: TargetText = None,
    seed: SeedNumber = None,
) -> tuple[str, dict[str, object]]:
    """Change an EARLIER image (an edit, not a new picture): "make it night", "the second one, but
    as a watercolour", "change the squirrel king into a queen", or a reply to an image. Write
    `prompt` as the WHOLE new English description with the change applied, not just the change.
    The image keeps its seed, size and model unless the user asks otherwise."""
    context = cast(TurnContext, runtime.context)
    return await edit(context, ref, prompt, mode, target, seed)


# A ToolException (a refusal the model can act on) becomes the tool's answer to the model, not a crash.
generate_image.handle_tool_error = True
edit_image.handle_tool_error = True


def image_tools() -> list[BaseTool]:
    """The tools the agent gets."""
    return [generate_image, edit_image]
