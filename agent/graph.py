"""The LangGraph agent: create_agent with egaku's tools, prompt and per-turn caps."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse, ToolCallLimitMiddleware
from langchain.agents.middleware.types import hook_config
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from agent.decision import IMAGE_TOOL
from agent.prompts import system_prompt
from agent.replies import tidy_reply
from egaku.config import AgentSettings
from egaku.errors import EgakuError, LLMUnavailable, LLMUnclear
from tools.context import TurnContext
from tools.history import Generation
from tools.image_tool import image_tools

log = logging.getLogger(__name__)

CAP_MESSAGE_NAME = "egaku-turn-cap"
CAP_TEXT = "I stopped here so I don't loop. Tell me what you'd like and I'll try again."


def calls_this_turn(messages: list[AnyMessage]) -> int:
    """Model calls since the latest user message (derived, not stored)."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        count += isinstance(message, AIMessage)
    return count


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
        outcomes = {r.tool_call_id: r.artifact.get("outcome") for r in results if isinstance(r.artifact, dict)}
        calls = [(outcomes.get(c["id"] or ""), c["args"]) for c in message.tool_calls]
        if any(r.status == "error" for r in results) or any(outcome is None for outcome, _ in calls):
            return None
        replies = [str(args.get("reply") or "").strip() for outcome, args in calls if outcome == "drawn"]
        if "failed" not in outcomes.values() and not all(replies):
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


def recent(messages: list[AnyMessage], keep: int) -> list[AnyMessage]:
    """The last `keep` messages, starting on a user message so no tool result is orphaned."""
    if len(messages) <= keep:
        return messages
    tail = messages[-keep:]
    for i, message in enumerate(tail):
        if isinstance(message, HumanMessage):
            return tail[i:]
    # One turn longer than `keep`: keep that whole turn.
    last_human = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    return messages[last_human:]


UNANSWERED_TEXT = "(no result: this call was interrupted and did not run to the end)"


def answer_every_tool_call(messages: list[AnyMessage]) -> list[AnyMessage] | None:
    """The conversation with every tool call answered and no stray tool result, or None if it already is.

    OpenAI, and every server that checks message order, refuses a conversation in which an
    assistant's tool call is not followed by its result: one such message would break every
    later turn of the channel.
    """
    repaired: list[AnyMessage] = []
    open_calls: dict[str, str] = {}  # call id -> tool name, for the latest assistant message

    def close() -> None:
        repaired.extend(
            ToolMessage(content=UNANSWERED_TEXT, tool_call_id=call_id, name=name, status="error")
            for call_id, name in open_calls.items()
        )
        open_calls.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            if open_calls.pop(message.tool_call_id, None) is None:
                continue  # a result with no call before it
            repaired.append(message)
            continue
        close()
        repaired.append(message)
        if isinstance(message, AIMessage):
            open_calls = {call["id"] or "": call["name"] for call in message.tool_calls}
    close()
    if len(repaired) == len(messages) and all(a is b for a, b in zip(repaired, messages, strict=True)):
        return None
    return repaired


class LoadedConversation(AgentMiddleware[Any, TurnContext, Any]):
    """Makes the saved conversation fit to continue, once, when a turn starts.

    - It repairs a conversation that a crash left with an unanswered tool call (or a stray
      tool result), which every later turn would otherwise send to a server that refuses it.
    - It drops what the model will never see again. Without this a channel's state grows with
      every turn, and every checkpoint write serialises all of it: a busy channel would get
      slower and bigger forever. Images are not lost: they live in the image history, which
      the model sees as a compact note.

    One hook does both: every middleware hook is a graph step, and this runs on every turn.
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


def usable(message: AIMessage) -> bool:
    """A tool call that parsed, or some text: anything else would reach the user as nothing."""
    if message.invalid_tool_calls:
        return False
    return bool(message.tool_calls) or bool(message.text.strip())


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

    def __init__(self, keep: int, instruct: bool = False) -> None:
        super().__init__()
        self.keep = keep
        self.instruct = instruct
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
                raise LLMUnavailable(f"LLM call failed: {exc!r}") from exc
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
            self._said[languages] = (system_prompt(languages, self.instruct), [*image_tools(languages)])
        system, tools = self._said[languages]
        note = getattr(context, "history_note", None)
        return request.override(
            messages=recent(request.messages, self.keep),
            system_message=SystemMessage(content=f"{system}\n\n{note}" if note else system),
            tools=list(tools),
        )


def tidied(response: ModelResponse, answer: AIMessage | None) -> ModelResponse:
    """The response with its text answer cut at loops and capped (tool calls untouched)."""
    if answer is None or answer.tool_calls or not isinstance(answer.content, str):
        return response
    text = tidy_reply(answer.content)
    if text == answer.content:
        return response
    fixed = answer.model_copy(update={"content": text})
    return ModelResponse(
        result=[fixed if m is answer else m for m in response.result],
        structured_response=response.structured_response,
    )


HISTORY_LIMIT = 10


def history_note(mine: list[Generation], replied: Generation | None = None) -> str:
    """The compact history the model sees: ids, short prompts and captions, never pixels."""
    lines = [g.line(n) for n, g in enumerate(mine, start=1)][-HISTORY_LIMIT:]
    text = (
        "This user's images here, oldest first (#n is the ordinal they may use):\n" + "\n".join(lines)
        if lines
        else "This user has no images here yet."
    )
    if replied is not None:
        shown = replied.line(0).split(" ", 1)[1]  # without the ordinal: it may not be one of theirs
        text += f"\nThe user replied to the message showing this image (ref 'reply'): {shown}"
    return text


def build_graph(model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any] | None, settings: AgentSettings) -> Any:
    """The compiled agent graph."""
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        LoadedConversation(settings.history_messages),
        TurnEnd(settings.max_model_calls),
        ToolCallLimitMiddleware(tool_name=IMAGE_TOOL, run_limit=settings.max_tool_calls, exit_behavior="continue"),
        ModelCall(settings.history_messages, instruct=settings.instruct_model is not None),
    ]
    return create_agent(
        model,
        tools=image_tools(),
        system_prompt=system_prompt(instruct=settings.instruct_model is not None),
        middleware=middleware,
        context_schema=TurnContext,
        checkpointer=checkpointer,
    )
