"""A decision as data, for models without native tool calling, built from the tools' own schemas.

Both the embedded SmolLM2 path and the JSON adapter for other models end in a `Decision`:
`{"action": "<verb>", ...the tool's arguments}` or `{"action": "reply", "text": ...}`. The
verbs and the arguments are the image tools' (`tools.image_tools.VERBS` and each tool's
`tool_call_schema`), so the JSON instructions, the validation and the tool call the model
would have made natively can never drift apart. `to_message` turns a decision into the very
AIMessage (with the same tool call) that a tool-calling model would have produced.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, Self

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.image_tools import VERBS, image_tools

REPLY = "reply"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|<\|[^|]*\|>")


class Decision(BaseModel):
    """Call a tool by its verb ("draw", "edit") with its arguments, or reply with `text`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    action: str = Field(max_length=40)
    text: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """A reply needs text; a call, a known verb and arguments its tool's schema accepts.

        The schema's bounds are the same whatever language the prompt's description asks for,
        so the tools' own (English) schemas judge here; `to_message` checks again with the bound ones.
        """
        if self.action == REPLY:
            if not clean_text(self.text or ""):
                raise ValueError("a reply decision needs text")
        elif tool_call(self, image_tools()) is None:
            raise ValueError(f"not a valid call: {self.action!r} with {sorted(self.arguments)}")
        return self

    @property
    def arguments(self) -> dict[str, Any]:
        """The tool's arguments as written (everything but `action` and `text`)."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}


class DecidingChatModel(BaseChatModel):
    """Base for chat models whose output is a Decision rather than native tool calls."""

    tools: tuple[BaseTool, ...] = ()

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Self:  # type: ignore[override]
        """Remember the tools (their schemas decide what a decision may say)."""
        return self.model_copy(update={"tools": tuple(t for t in tools if isinstance(t, BaseTool))})

    @property
    def can_draw(self) -> bool:
        """Whether the image tools were bound."""
        return bool(self.tools)


def clean_text(text: str) -> str:
    """Drop control characters and leaked chat-template tokens; fold whitespace."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _tool(tools: Sequence[BaseTool], verb: str) -> BaseTool | None:
    name = VERBS.get(verb)
    return next((t for t in tools if t.name == name), None)


def tool_call(decision: Decision, tools: Sequence[BaseTool]) -> dict[str, Any] | None:
    """The tool call a decision stands for, its arguments checked by the tool's own schema; None if they fail."""
    tool = _tool(tools, decision.action)
    if tool is None:
        return None
    args = {k: clean_text(v) if isinstance(v, str) else v for k, v in decision.arguments.items()}
    try:
        checked = tool.tool_call_schema.model_validate(args)  # type: ignore[union-attr]
    except ValidationError:
        return None
    fields = checked.model_dump(exclude_none=True, exclude_unset=True)
    return {"name": tool.name, "args": fields, "id": f"call_{uuid.uuid4().hex[:12]}"}


def to_message(decision: Decision, tools: Sequence[BaseTool]) -> AIMessage:
    """The AIMessage a native tool-calling model would have produced (empty when the decision does not hold)."""
    if decision.action == REPLY:
        return AIMessage(content=clean_text(decision.text or ""))
    call = tool_call(decision, tools)
    return AIMessage(content="", tool_calls=[call]) if call else AIMessage(content="")


def parse_decision(raw: str) -> Decision | None:
    """The first JSON object in raw that is a valid Decision, else None."""
    decoder = json.JSONDecoder()
    for start, char in enumerate(raw):
        if char != "{":
            continue
        try:
            obj, _end = decoder.raw_decode(raw, start)
            return Decision.model_validate(obj)
        except (json.JSONDecodeError, ValidationError):
            continue
    return None


def json_instructions(tools: Sequence[BaseTool]) -> str:
    """How to answer in JSON, written from the tools' own descriptions and argument schemas."""
    parts = ["Answer with ONE JSON object and nothing else."]
    for verb in VERBS:
        tool = _tool(tools, verb)
        if tool is None:
            continue
        schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        required = set(schema.get("required", ()))
        fields = [f'"action": "{verb}"'] + [
            f'"{name}": {_placeholder(prop, name in required)}' for name, prop in schema.get("properties", {}).items()
        ]
        parts.append(f"{_first_sentence(tool.description)}: {{{', '.join(fields)}}}.")
    parts.append('To answer in text: {"action": "reply", "text": "<your answer in the user\'s language>"}.')
    parts.append("Leave out the optional fields you do not need.")
    return " ".join(parts)


def _placeholder(prop: dict[str, Any], required: bool) -> str:
    """A field's value as the instructions show it: its choices, or its description in angle brackets."""
    options = prop.get("anyOf", [prop])
    choices = [c for option in options for c in option.get("enum", ())]
    if choices:
        return '"' + "|".join(str(c) for c in choices) + '"' + ("" if required else " (optional)")
    kinds = {option.get("type") for option in options} - {"null"}
    about = _first_sentence(prop.get("description", "")) or prop.get("title", "value")
    shown = f"<{about}{'' if required else '; optional'}>"
    if "array" in kinds:
        return f'["{shown}"]'  # a list of such values
    return shown if kinds & {"integer", "number"} else f'"{shown}"'


def _first_sentence(text: str) -> str:
    """A description's first sentence, short enough for one line of instructions."""
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(text.split()), maxsplit=1)[0].rstrip(".")
    return first if len(first) <= 160 else first[:159] + "…"


def leaks_instructions(text: str, instructions: str) -> bool:
    """Whether text copies egaku's hidden JSON instructions: a placeholder, or six of their words in a row.

    Any angle-bracketed run of several words counts as a placeholder, this version's or an older
    one's: a taught concept is written in angle brackets too (`<our-mascot>`), but as one word.
    """
    folded = text.casefold()
    placeholders = {p.casefold() for p in re.findall(r"<[^<>]+>", instructions)}
    if any(p in folded for p in placeholders) or re.search(r"<[^<>\s]+\s[^<>]*>", folded):
        return True
    said = re.findall(r"\w+", instructions.casefold())
    runs = {tuple(said[i : i + 6]) for i in range(len(said) - 5)}
    words = re.findall(r"\w+", folded)
    return any(tuple(words[i : i + 6]) in runs for i in range(len(words) - 5))
