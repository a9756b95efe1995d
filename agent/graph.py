"""The LangGraph agent: create_agent wired with egaku's tools, middleware and per-turn caps."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ToolCallLimitMiddleware
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.middleware import LoadedConversation, ModelCall, TurnEnd
from egaku.config import AgentSettings
from tools.image_tools import image_tools
from tools.turn import TurnContext


def build_graph(model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any] | None, settings: AgentSettings) -> Any:
    """The compiled agent graph.

    Every tool is an image tool, so the cap on tool calls per turn counts them all (no tool
    name): a model that loops on edit_image is stopped like one that loops on generate_image.
    The system prompt is ModelCall's, per the drawing model's languages, on every call.
    """
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        LoadedConversation(settings.history_messages),
        TurnEnd(settings.max_model_calls),
        ToolCallLimitMiddleware(run_limit=settings.max_tool_calls, exit_behavior="continue"),
        ModelCall(
            settings.history_messages,
            instruct=settings.instruct_model is not None,
            references=settings.reference_model is not None,
        ),
    ]
    return create_agent(
        model,
        tools=image_tools(),
        middleware=middleware,
        context_schema=TurnContext,
        checkpointer=checkpointer,
    )
