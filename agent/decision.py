"""A draw-or-reply decision as data, for models without native tool calling.

Both the embedded SmolLM2 path and the JSON adapter for other models end in a
`Decision`, and `to_message` turns it into the very AIMessage (with the same
tool call) that a tool-calling model would have produced.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, Literal, Self

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

IMAGE_TOOL = "generate_image"
EDIT_TOOL = "edit_image"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|<\|[^|]*\|>")


class Decision(BaseModel):
    """Draw with a prompt, edit an earlier image, or reply with text."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["draw", "edit", "reply"]
    prompt: str | None = Field(default=None, max_length=4000)
    text: str | None = Field(default=None, max_length=4000)
    ref: str | None = Field(default=None, max_length=200)
    mode: Literal["regenerate", "subtle", "strong", "region", "instruct"] | None = None
    target: str | None = Field(default=None, max_length=200)
    reply: str | None = Field(default=None, max_length=1000)  # a draw's or an edit's words to the user

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """A draw or an edit needs a prompt, a reply needs text: `{"action": "reply"}` is no answer."""
        needed = self.text if self.action == "reply" else self.prompt
        if not clean_text(needed or ""):
            raise ValueError(f"a {self.action} decision needs {'text' if self.action == 'reply' else 'a prompt'}")
        return self


class DecidingChatModel(BaseChatModel):
    """Base for chat models whose output is a Decision rather than native tool calls."""

    tool_names: tuple[str, ...] = ()

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Self:  # type: ignore[override]
        """Remember which tools exist; a draw is only offered when generate_image is one."""
        names = tuple(getattr(t, "name", None) or t.get("name", "") for t in tools)
        return self.model_copy(update={"tool_names": names})

    @property
    def can_draw(self) -> bool:
        """Whether the image tool was bound."""
        return IMAGE_TOOL in self.tool_names


def clean_text(text: str) -> str:
    """Drop control characters and leaked chat-template tokens; fold whitespace."""
    return " ".join(_CONTROL.sub(" ", text).split())


def to_message(decision: Decision) -> AIMessage:
    """The AIMessage a native tool-calling model would have produced."""
    prompt = clean_text(decision.prompt or "")
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    reply = {"reply": clean_text(decision.reply)} if decision.reply and clean_text(decision.reply) else {}
    if decision.action == "draw" and prompt:
        args: dict[str, str] = {"prompt": prompt, **reply}
        return AIMessage(content="", tool_calls=[{"name": IMAGE_TOOL, "args": args, "id": call_id}])
    if decision.action == "edit" and prompt:
        args = {"ref": decision.ref or "last", "prompt": prompt, "mode": decision.mode or "regenerate", **reply}
        if decision.target:
            args["target"] = decision.target
        return AIMessage(content="", tool_calls=[{"name": EDIT_TOOL, "args": args, "id": call_id}])
    return AIMessage(content=clean_text(decision.text or ""))


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
