"""The agent as the bot sees it: one call per user turn, typed in and out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import openai
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import ValidationError

from agent.graph import history_note
from egaku.config import AgentSettings
from egaku.errors import InvalidImageRequest, LLMUnavailable
from tools.context import ImageBackend, ImageOptions, JobWatch, TurnContext
from tools.history import History
from tools.image_tool import EditMode, Refusal, edit, keep, run_tool, watched_generate
from tools.limits import JobLimiter
from tools.types import RenderedImage
from worker.protocol import GenerationRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnRequest:
    """One thing a user said (or asked for with /imagine)."""

    conversation_id: str
    user_id: str
    user_name: str
    text: str
    must_draw: bool = False
    guild_id: str | None = None
    channel_id: str | None = None
    source_id: str | None = None  # the Discord message or interaction id, for the audit log
    reply_to: str | None = None  # the message the user replied to, for "edit this"
    options: ImageOptions = field(default_factory=ImageOptions)
    watch: JobWatch | None = None  # who shows progress while the GPU works (the bot's status message)
    nsfw: bool = False  # NSFW allowed here: the server allows it and the channel is marked NSFW
    guild_cap: int | None = None
    language: str | None = None  # the user's preferred reply language (/settings me)


@dataclass(frozen=True)
class TurnResult:
    """What the bot should show for a turn."""

    reply: str
    images: list[RenderedImage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)


class Agent:
    """Runs turns through the graph, with memory per conversation."""

    def __init__(
        self,
        graph: Any,
        backend: ImageBackend,
        settings: AgentSettings,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        model_preset: str | None = None,
        history: History | None = None,
        instruct_model: str | None = None,
        limiter: JobLimiter | None = None,
        blocklist: tuple[str, ...] = (),
        worker_safety_check: bool = False,
    ) -> None:
        self._graph = graph
        self._backend = backend
        self._settings = settings
        self._checkpointer = checkpointer
        self._model_preset = model_preset
        self._history = history
        self._instruct_model = instruct_model
        self._limiter = limiter
        self._blocklist = blocklist
        self._worker_safety_check = worker_safety_check

    def context_for(self, turn: TurnRequest) -> TurnContext:
        """The tools' context for one turn."""
        return TurnContext(
            backend=self._backend,
            user_id=turn.user_id,
            user_words=turn.text,
            model=self._model_preset,
            history=self._history,
            conversation=turn.conversation_id,
            guild_id=turn.guild_id,
            channel_id=turn.channel_id,
            reply_to=turn.reply_to,
            source_id=turn.source_id,
            instruct_model=self._instruct_model,
            options=turn.options,
            limiter=self._limiter,
            watch=turn.watch,
            blocklist=() if turn.nsfw else self._blocklist,
            guild_cap=turn.guild_cap,
            safety_check=self._worker_safety_check and not turn.nsfw,
        )

    async def respond(self, turn: TurnRequest) -> TurnResult:
        """Let the model decide: draw (through the tool) or reply in text."""
        context = self.context_for(turn)
        if self._history is not None:
            context.history_note = history_note(await self._history.mine(turn.conversation_id, turn.user_id))
        command = "/imagine " if turn.must_draw else ""
        replying = " (replying to your message)" if turn.reply_to else ""
        if turn.language:
            replying += f" (reply in {turn.language})"
        message = HumanMessage(content=f"[{turn.user_name}]{replying} {command}{turn.text}")
        config = {
            "configurable": {"thread_id": turn.conversation_id},
            "recursion_limit": 4 * self._settings.max_model_calls + 4,
        }
        try:
            state = await asyncio.wait_for(
                # One checkpoint write per turn, at its end, instead of one per step: a turn
                # cut short by a crash is simply asked again, and the images are in the history.
                self._graph.ainvoke(
                    {"messages": [message]},
                    config=config,
                    context=context,
                    durability="exit" if self._checkpointer is not None else None,
                ),
                timeout=self._settings.turn_timeout_s,
            )
        except TimeoutError as exc:
            raise LLMUnavailable(f"turn in {turn.conversation_id} ran past {self._settings.turn_timeout_s}s") from exc
        except openai.OpenAIError as exc:
            raise LLMUnavailable(f"LLM call failed: {exc!r}") from exc
        reply = final_reply(state["messages"])
        return TurnResult(reply=reply, images=list(context.images), failures=list(context.failures))

    async def draw_raw(self, turn: TurnRequest) -> TurnResult:
        """Draw the user's words as they are: no model, no rewrite."""
        context = self.context_for(turn)
        fields = turn.options.apply(
            {
                "prompt": turn.text,
                "user": turn.user_id,
                "model": self._model_preset,
                "safety_check": context.safety_check,
            }
        )
        try:
            request = GenerationRequest.model_validate({k: v for k, v in fields.items() if v not in (None, False)})
        except ValidationError as exc:
            raise InvalidImageRequest(str(exc.errors()[0]["msg"])) from exc

        async def work() -> list[RenderedImage]:
            return await keep(await watched_generate(context, request), context, "generate", None)

        try:
            await run_tool(context, work)
        except Refusal as exc:
            return TurnResult(reply=f"I couldn't do that: {exc.reason}.")
        return TurnResult(reply="", images=list(context.images), failures=list(context.failures))

    async def edit_direct(
        self,
        turn: TurnRequest,
        ref: str,
        prompt: str,
        mode: EditMode,
        *,
        seed: int | None = None,
        scale: float = 1.0,
    ) -> TurnResult:
        """An edit the user asked for with a button: the same code path as the model's edit_image."""
        context = self.context_for(turn)
        try:
            await edit(context, ref, prompt, mode, None, seed, scale)
        except Refusal as exc:
            return TurnResult(reply=f"I couldn't do that: {exc.reason}.")
        return TurnResult(reply="", images=list(context.images), failures=list(context.failures))

    async def reset(self, conversation_id: str) -> None:
        """Forget a conversation's memory."""
        if self._checkpointer is not None:
            await self._checkpointer.adelete_thread(conversation_id)


def final_reply(messages: list[Any]) -> str:
    """The text of the turn's last model message."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage) and not message.tool_calls and message.text.strip():
            return message.text.strip()
    return ""
