"""The agent's image tools, `generate_image` and `edit_image`: descriptions and fields are the model's instructions.

These schemas are the one contract between the agent and its tools: native tool calling
sends them as they are, and models without it get JSON instructions built from them
(`agent.decision`). A tool's result is its typed `Outcome`, carried as the tool message's
artifact: the model reads only the short text, never pixels.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, ConfigDict, Field, create_model

from tools.checks.languages import ENGLISH, detect_language, prompt_language_rule
from tools.service.references import APPROXIMATE_NOTE
from tools.service.requests import Draw, Edit, EditMode, Failed, Outcome, Refused
from tools.turn import TurnContext
from worker.protocol import MAX_BEST_OF, MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, MAX_SEED, Aspect, ReferenceRole

log = logging.getLogger(__name__)


# The prompt's language follows the drawing model (`in_languages`): these read "{language}".
PROMPT_DESCRIPTION = (
    "ONE detailed description of the picture, {language}, about 40-80 words: "
    "subject, setting, composition, lighting, colours, medium and style. "
    "Keep any text the user quoted verbatim."
)


def prompt_field(languages: tuple[str, ...]) -> Any:
    """The `prompt` argument for a drawing model reading `languages`."""
    description = PROMPT_DESCRIPTION.format(language=prompt_language_rule(languages))
    return Field(min_length=3, max_length=MAX_PROMPT_CHARS, description=description)


PromptText = Annotated[str, prompt_field((ENGLISH,))]
NegativeText = Annotated[
    str | None,
    Field(max_length=MAX_NEGATIVE_CHARS, description="Things to keep out of the picture, in English, comma-separated."),
]
AspectChoice = Annotated[
    Aspect, Field(description="Aspect ratio: 1:1 square, 3:2 or 16:9 landscape, 2:3 or 9:16 portrait.")
]
SeedNumber = Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Only when the user asks for a specific seed.")]
BestOfCount = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_BEST_OF,
        description=(
            "Only when the user wants the best of several tries ('give me the best one', 'try a few and pick', "
            "'best of 4'): how many candidates to draw; only the best-matching one is posted. Leave out otherwise."
        ),
    ),
]
ReplyText = Annotated[
    str | None,
    Field(
        max_length=1000,
        description=(
            "Your reply to the user, posted with the picture: one or two short sentences in the language "
            "they wrote in. Do not repeat the prompt."
        ),
    ),
]


class GenerateImageArgs(BaseModel):
    """Arguments of generate_image, bounded like the worker's protocol."""

    model_config = ConfigDict(extra="forbid")

    prompt: PromptText
    negative_prompt: NegativeText = None
    aspect: AspectChoice = "1:1"
    seed: SeedNumber = None
    best_of: BestOfCount = None


FAILED_TEXT = "The image could not be made (service problem). Apologise in one short sentence; do not retry."


def for_model(outcome: Outcome, reply: str | None) -> tuple[str, Outcome]:
    """A few words for the model, and the typed outcome as the artifact for the agent (never for the model).

    A refusal is the tool's error: the model reads it and may fix its arguments (the agent
    still finds the refusal in the artifact). A failure is not the model's to fix, so it is
    told to stop. `agent.middleware.TurnEnd` reads the same artifact to end the turn: after a
    picture with a reply, or a failure, no second model call is made.
    """
    if isinstance(outcome, Refused):
        said = str(outcome.reason).rstrip(".") + (f" ({outcome.detail})" if outcome.detail else "")
        if outcome.invalid:
            return f"Invalid arguments: {said}. Fix them and call again.", outcome
        return f"Refused: {said}. Adjust the arguments once, or ask the user.", outcome
    if isinstance(outcome, Failed):
        return FAILED_TEXT, outcome
    images = outcome.images
    first = images[0]
    ids = ", ".join(i.id for i in images if i.id)
    done = f"Done: {len(images)} image(s) drawn ({first.summary()}{', id ' + ids if ids else ''})"
    if reply and reply.strip():
        text = f"{done} and posted with your reply."
    else:
        text = (
            f"{done} and attached to your reply. Reply in one or two short sentences in the user's language; "
            "do not repeat the prompt or describe files."
        )
    if outcome.notice:  # the user reads the notice under the reply; the model must not promise more
        text = f"{text} {APPROXIMATE_NOTE} The user is told so with the picture."
    return text, outcome


GENERATE_DESCRIPTION = """Draw a NEW picture. Call this only when the user asks for an image, drawing, photo,
painting or illustration (in any language). Write `prompt` as one detailed description of the
whole picture {language} (about 40-80 words): subject, setting, composition, lighting, colours,
medium and style. Keep text the user quoted verbatim, and never name artists who worked after
1912: describe the movement, era and medium instead. When the user asks for the best of several
tries ("give me the best one", "draw a few and pick"), set `best_of` to the number of candidates
(4 if they name none): they are drawn at once and the best match is posted. Call it once per
request, with your short `reply` to the user: the turn ends when the picture is posted."""


@tool(
    "generate_image",
    response_format="content_and_artifact",
    description=GENERATE_DESCRIPTION.format(language=prompt_language_rule((ENGLISH,))),
)
async def generate_image(
    prompt: PromptText,
    runtime: ToolRuntime[Any],
    negative_prompt: NegativeText = None,
    aspect: AspectChoice = "1:1",
    seed: SeedNumber = None,
    best_of: BestOfCount = None,
    reply: ReplyText = None,
) -> tuple[str, Outcome]:
    """Draw a new picture (the model reads GENERATE_DESCRIPTION)."""
    args = GenerateImageArgs(prompt=prompt, negative_prompt=negative_prompt, aspect=aspect, seed=seed, best_of=best_of)
    context = cast(TurnContext, runtime.context)
    draw = Draw(**args.model_dump(), language=detect_language(prompt), reply=reply)
    outcome = await context.images.draw(context.who, draw)
    return for_model(outcome, reply)


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
    EditMode | None,
    Field(
        description=(
            "Leave out for the default: 'instruct' where instruction edits are available, else 'regenerate'. "
            "instruct: the edit model redraws from your whole new description and keeps the subject; the best "
            "choice, when available, for changes to part of the scene ('make it night', 'as a watercolour', "
            "'the king into a queen'). "
            "regenerate: a fresh picture from the same seed and the new description (for 'make it night' where "
            "instruct is not available). "
            "subtle / strong: keep the picture, vary it a little / a lot (e.g. 'as a watercolour'). "
            "region: repaint only `target`, keep everything else. "
            "reference: a NEW scene that keeps a character or object from `ref` (and `references`): "
            "'the same squirrel king, now riding a horse'."
        )
    ),
]
TargetText = Annotated[
    str | None,
    Field(max_length=200, description="region mode: the part to change, in English, e.g. 'the squirrel king'."),
]
# A reference edit's further pictures: Qwen-Image-Edit Plus reads 3 in all, FLUX.2 up to 10 (the service checks
# the configured model's own limit, and the worker again).
MAX_REFERENCES = 4
ReferenceList = Annotated[
    list[Annotated[str, Field(max_length=200)]] | None,
    Field(
        max_length=MAX_REFERENCES,
        description=(
            "Other images to take things from, in order after `ref`. Each is given like `ref` (an id, 'reply', "
            "an ordinal or a few words): the user's uploads, the image they replied to, earlier images. In `prompt`, "
            "`ref` is picture 1 and these are picture 2, 3...: 'put the cat from picture 2 into picture 1'. Leave "
            "out for an edit of one image."
        ),
    ),
]
ReferenceRoleChoice = Annotated[
    ReferenceRole | None,
    Field(
        description=(
            "With `references` only: 'style' when only their look is wanted ('in the style of this'); "
            "leave out to take their subject (a character, an object)."
        )
    ),
]


EDIT_DESCRIPTION = """Change an EARLIER image (an edit, not a new picture): "make it night", "the second one, but
as a watercolour", "change the squirrel king into a queen", or a reply to an image. Write
`prompt` as the WHOLE new description with the change applied, not just the change, {language}.
The image keeps its seed, size and model unless the user asks otherwise. When the user combines
pictures ("put the cat from my upload into the picture you drew", "put this hat on him" with an
attachment, "in the style of this"), `ref` is the picture changed and `references` lists the others,
in order; the prompt names them by place ("the cat from picture 2"), using what each one shows.
For the same character or object in a new scene ("the same squirrel king, now riding a horse"),
use mode "reference". Give your short `reply` to the user: the turn ends when the picture is posted."""


@tool(
    "edit_image",
    response_format="content_and_artifact",
    description=EDIT_DESCRIPTION.format(language=prompt_language_rule((ENGLISH,))),
)
async def edit_image(
    ref: RefText,
    prompt: PromptText,
    runtime: ToolRuntime[Any],
    mode: ModeChoice = None,
    target: TargetText = None,
    references: ReferenceList = None,
    reference_role: ReferenceRoleChoice = None,
    seed: SeedNumber = None,
    reply: ReplyText = None,
) -> tuple[str, Outcome]:
    """Change an earlier image (the model reads EDIT_DESCRIPTION)."""
    context = cast(TurnContext, runtime.context)
    request = Edit(
        ref=ref, prompt=prompt, mode=mode, target=target, seed=seed, language=detect_language(prompt),
        references=tuple(references or ()), role=reference_role or "subject", reply=reply,
    )  # fmt: skip
    return for_model(await context.images.edit(context.who, request), reply)


DESCRIPTIONS = {generate_image.name: GENERATE_DESCRIPTION, edit_image.name: EDIT_DESCRIPTION}
# The verb a model without native tool calling writes for each tool (`agent.decision`).
VERBS = {"draw": generate_image.name, "edit": edit_image.name}


def image_tools(languages: tuple[str, ...] = (ENGLISH,)) -> list[BaseTool]:
    """The tools the agent gets, telling the model to write prompts in a language the drawing model reads.

    Only the schema the model sees differs by language; the calls run the same tools.
    """
    tools: list[BaseTool] = [generate_image, edit_image]
    if languages == (ENGLISH,):
        return tools
    return [in_languages(t, languages) for t in tools]


def in_languages(image_tool: BaseTool, languages: tuple[str, ...]) -> BaseTool:
    """A copy of an image tool whose description and `prompt` field ask for a prompt in `languages`."""
    base = cast(type[BaseModel], image_tool.args_schema)
    schema = create_model(base.__name__, __base__=base, prompt=(str, prompt_field(languages)))
    description = DESCRIPTIONS[image_tool.name].format(language=prompt_language_rule(languages))
    return image_tool.model_copy(update={"description": description, "args_schema": schema})
