"""The agent's middleware: how a turn starts, how each model call is bounded, and when a turn ends."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.agents.middleware.types import hook_config
from langchain_core.messages import AIMessage, AnyMessage, RemoveMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from agent.messages import answer_every_tool_call, calls_this_turn, recent, tidied, usable
from agent.prompts import system_prompt
from agent.replies import tidy_reply
from egaku.errors import EgakuError, LLMUnavailable, LLMUnclear, safe_detail
from egaku.i18n import N_
from tools.image_tools import image_tools
from tools.service.requests import Drawn, Failed
from tools.turn import TurnContext

log = logging.getLogger(__name__)

CAP_MESSAGE_NAME = "egaku-turn-cap"
CAP_TEXT = N_("I stopped here so I don't loop. Tell me what you'd like and I'll try again.")


def drawing_done(messages: list[AnyMessage]) -> list[AIMessage] | None:
    """How a turn ends once its pictures are posted, or None when the model must speak again.

    The model writes its short reply inside the image tool call, so a drawing turn needs
    one model call, not two: once every call of its last message has been answered with a
    picture, the reply it wrote becomes the turn's last message. A failure of the image
    service ends the turn too; the bot tells the user with a fixed text
    (`egaku.errors.report`). A refusal, or a picture without a reply, goes back to the model.
    """
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            results.append(message)
            continue
        if not (isinstance(message, AIMessage) and message.tool_calls and results):
            return None
        outcomes = {r.tool_call_id: r.artifact for r in results}
        calls = [(outcomes.get(c["id"] or ""), c["args"]) for c in message.tool_calls]
        if not all(isinstance(outcome, Drawn | Failed) for outcome, _ in calls):
            return None  # a refusal, or arguments the schema refused: the model may fix them
        replies = [str(args.get("reply") or "").strip() for outcome, args in calls if isinstance(outcome, Drawn)]
        if not any(isinstance(outcome, Failed) for outcome, _ in calls) and not all(replies):
            return None
        text = tidy_reply(" ".join(dict.fromkeys(r for r in replies if r)))
        return [AIMessage(content=text)] if text else []
    return None


class TurnEnd(AgentMiddleware[Any, TurnContext, Any]):
    """Ends a turn before another model call: when its pictures are posted, or after max_calls calls."""

    def __init__(self, max_calls: int) -> None:
        super().__init__()
        self.max_calls = max_calls

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Runtime[TurnContext]) -> dict[str, Any] | None:
        """Jump to the end with the reply written in the tool call, or with the cap's fixed reply."""
        done = drawing_done(state["messages"])
        if done is not None:
            return {"jump_to": "end", "messages": done}
        if calls_this_turn(state["messages"]) >= self.max_calls:
            return {"jump_to": "end", "messages": [AIMessage(content=CAP_TEXT, name=CAP_MESSAGE_NAME)]}
        return None


class LoadedConversation(AgentMiddleware[Any, TurnContext, Any]):
    """Makes the saved conversation fit to continue, once, when a turn starts.

    - It repairs a conversation that a crash left with an unanswered tool call (or a stray
      tool result), which every later turn would otherwise send to a server that refuses it.
    - It drops what the model will never see again. Without this a channel's state grows with
      every turn, and every checkpoint write serialises all of it: a busy channel would get
      slower and bigger forever. Images are not lost: they live in the image history, which
      the model sees as a compact note.

    One hook does both: every middleware hook is a graph step, and this runs on every turn.
    At the turn's end it also drops the tools' typed outcomes (the pictures) from the tool
    messages: the agent has read them, and the saved conversation keeps no pixels.
    """

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    def before_agent(self, state: Any, runtime: Runtime[TurnContext]) -> dict[str, Any] | None:
        """Answer dangling tool calls, drop stray tool results, then keep only the recent window."""
        messages = state["messages"]
        repaired = answer_every_tool_call(messages)
        if repaired is not None:
            log.warning("repaired a saved conversation with unanswered tool calls")
            return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *recent(repaired, self.keep)]}
        kept = recent(messages, self.keep)
        if len(kept) == len(messages):
            return None
        return {"messages": [RemoveMessage(id=m.id) for m in messages[: len(messages) - len(kept)] if m.id]}

    def after_agent(self, state: Any, runtime: Runtime[TurnContext]) -> dict[str, Any] | None:
        """Keep the tool messages' text, not their outcomes, in the saved conversation."""
        carried = [m for m in state["messages"] if isinstance(m, ToolMessage) and m.artifact is not None]
        if not carried:
            return None
        return {"messages": [m.model_copy(update={"artifact": None}) for m in carried]}


class ModelCall(AgentMiddleware[Any, TurnContext, Any]):
    """The boundary around every model call.

    - The model sees only the recent history (within a long turn too), and the turn's
      history note appended to the system message (read once per turn, not once per call).
    - Whatever the call raises (an HTTP error, a body that is not JSON, an HTML page) is the
      language model not answering: `LLMUnavailable`, never the catch-all.
    - An answer with a cut-off tool call or no text is asked once more, logged raw, and then
      becomes `LLMUnclear`, so the user is told plainly instead of getting an empty message.
    - Text is cut at the first repeated sentence and capped in length, so a looping model
      cannot flood the channel or the saved conversation.

    One middleware, not three: langchain traces each wrapping middleware, at two thread hops
    per call, which cost about a third of the bot's CPU per turn (docs/benchmarks.md).
    """

    def __init__(self, keep: int, instruct: bool = False, references: bool = False) -> None:
        super().__init__()
        self.keep = keep
        self.instruct = instruct
        self.references = references
        # The system prompt and tools per set of prompt languages (made once each, not once per call).
        self._said: dict[tuple[str, ...], tuple[str, list[BaseTool | dict[str, Any]]]] = {}

    async def awrap_model_call(
        self,
        request: ModelRequest[TurnContext],
        handler: Callable[[ModelRequest[TurnContext]], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Trim and annotate the request, call the model (at most twice), check and tidy its answer."""
        request = self.shown(request)
        for attempt in (1, 2):
            try:
                response = await handler(request)
            except EgakuError:
                raise
            except Exception as exc:
                raise LLMUnavailable(f"LLM call failed: {safe_detail(exc)}") from exc
            if isinstance(response, AIMessage):
                response = ModelResponse(result=[response])
            answer = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
            if answer is None or usable(answer):
                return tidied(response, answer)
            log.warning(
                "unusable model answer (attempt %d): content=%r invalid_tool_calls=%r",
                attempt, answer.content, answer.invalid_tool_calls,
            )  # fmt: skip
        raise LLMUnclear("the model's answer was unusable twice")

    def shown(self, request: ModelRequest[TurnContext]) -> ModelRequest[TurnContext]:
        """What the model is shown: the recent messages; the system prompt and tools for the drawing
        model's languages; and the history note."""
        context = request.runtime.context
        languages = getattr(context, "prompt_languages", ("en",))
        if languages not in self._said:
            self._said[languages] = (
                system_prompt(languages, self.instruct, self.references),
                [*image_tools(languages)],
            )
        system, tools = self._said[languages]
        note = getattr(context, "history_note", None)
        return request.override(
            messages=recent(request.messages, self.keep),
            system_message=SystemMessage(content=f"{system}\n\n{note}" if note else system),
            tools=list(tools),
        )
