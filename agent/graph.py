"""The LangGraph agent: create_agent with egaku's tools, prompt and per-turn caps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse, ToolCallLimitMiddleware
from langchain.agents.middleware.types import hook_config
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.runtime import Runtime

from agent.decision import IMAGE_TOOL
from agent.prompts import SYSTEM_PROMPT
from egaku.config import AgentSettings
from tools.context import TurnContext
from tools.history import Generation
from tools.image_tool import image_tools

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


class TurnCap(AgentMiddleware[Any, TurnContext, Any]):
    """Ends a turn after max_calls model calls with a fixed, polite reply."""

    def __init__(self, max_calls: int) -> None:
        super().__init__()
        self.max_calls = max_calls

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Runtime[TurnContext]) -> dict[str, Any] | None:
        """Jump to the end once the cap is reached."""
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


class CompactHistory(AgentMiddleware[Any, TurnContext, Any]):
    """Drops what the model will never see again from the saved conversation.

    Without this a channel's state grows with every turn, and every checkpoint write
    serialises all of it: a busy channel would get slower and bigger forever. Images are
    not lost: they live in the image history, which the model sees as a compact note.
    """

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    def before_agent(self, state: Any, runtime: Runtime[TurnContext]) -> dict[str, Any] | None:
        """At the start of a turn, remove messages older than the recent window."""
        messages = state["messages"]
        kept = recent(messages, self.keep)
        if len(kept) == len(messages):
            return None
        return {"messages": [RemoveMessage(id=m.id) for m in messages[: len(messages) - len(kept)] if m.id]}


class TrimHistory(AgentMiddleware[Any, TurnContext, Any]):
    """Shows the model only recent history (within a long turn too)."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    def wrap_model_call(
        self, request: ModelRequest[TurnContext], handler: Callable[[ModelRequest[TurnContext]], ModelResponse]
    ) -> ModelResponse:
        """Trim, then call the model."""
        return handler(request.override(messages=recent(request.messages, self.keep)))

    async def awrap_model_call(
        self,
        request: ModelRequest[TurnContext],
        handler: Callable[[ModelRequest[TurnContext]], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Trim, then call the model."""
        return await handler(request.override(messages=recent(request.messages, self.keep)))


HISTORY_LIMIT = 10


def history_note(mine: list[Generation]) -> str:
    """The compact history the model sees: ids and short prompts, never pixels."""
    if not mine:
        return "This user has no images here yet."
    lines = [g.line(n) for n, g in enumerate(mine, start=1)][-HISTORY_LIMIT:]
    return "This user's images here, oldest first (#n is the ordinal they may use):\n" + "\n".join(lines)


class HistoryNote(AgentMiddleware[Any, TurnContext, Any]):
    """Shows the model the turn's history note (read once per turn, not once per model call)."""

    async def awrap_model_call(
        self,
        request: ModelRequest[TurnContext],
        handler: Callable[[ModelRequest[TurnContext]], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Append the compact history to the system message."""
        note = getattr(request.runtime.context, "history_note", None)
        if not note:
            return await handler(request)
        base = request.system_message.content if request.system_message else ""
        return await handler(request.override(system_message=SystemMessage(content=f"{base}\n\n{note}")))


def build_graph(model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any] | None, settings: AgentSettings) -> Any:
    """The compiled agent graph."""
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        TurnCap(settings.max_model_calls),
        ToolCallLimitMiddleware(tool_name=IMAGE_TOOL, run_limit=settings.max_tool_calls, exit_behavior="continue"),
        CompactHistory(settings.history_messages),
        TrimHistory(settings.history_messages),
        HistoryNote(),
    ]
    return create_agent(
        model,
        tools=image_tools(),
        system_prompt=SYSTEM_PROMPT,
        middleware=middleware,
        context_schema=TurnContext,
        checkpointer=checkpointer,
    )
