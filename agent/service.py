"""The agent as the bot sees it: one call per user turn, typed in and out."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import openai
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.middleware import CAP_MESSAGE_NAME, CAP_TEXT
from agent.replies import MAX_INPUT_CHARS, normalise_input
from agent.seeing import Captioner, Eyes, Seen
from egaku.config import AgentSettings
from egaku.errors import EmptyMessage, JobCancelled, LLMUnavailable, MessageTooLong, safe_detail
from egaku.i18n import ENGLISH_VOICE, Text, Voice
from tools.pictures import RenderedImage
from tools.service.images import ImageService
from tools.service.requests import Drawn, Failed, ImageOptions, JobWatch, Outcome, Refused, Requester
from tools.turn import TurnContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnRequest:
    """One thing a user said (or asked for with /imagine): who asks, in their words, and how to answer."""

    who: Requester  # who, where, their words (`user_words`) and their explicit options
    user_name: str
    must_draw: bool = False
    language: str | None = None  # the user's preferred reply language (/settings me)

    @classmethod
    def of(
        cls,
        conversation_id: str,
        user_id: str,
        user_name: str,
        text: str,
        *,
        must_draw: bool = False,
        language: str | None = None,
        options: ImageOptions | None = None,
        watch: JobWatch | None = None,
        **where: Any,
    ) -> TurnRequest:
        """A turn from its parts; `where` are the Requester's other fields (guild_id, channel_id, nsfw...)."""
        who = Requester(
            user_id=user_id,
            user_words=text,
            conversation=conversation_id,
            options=options or ImageOptions(),
            watch=watch,
            **where,
        )
        return cls(who=who, user_name=user_name, must_draw=must_draw, language=language)

    @property
    def text(self) -> str:
        """The user's words."""
        return self.who.user_words


@dataclass(frozen=True)
class TurnResult:
    """What the bot should show for a turn."""

    reply: str
    images: list[RenderedImage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    refusals: list[Text] = field(default_factory=list)  # why a request was refused, safe to show
    # When the reply is one of egaku's fixed texts (a direct result's refusal, the turn cap), that text:
    # `reply` is its English, and the bot speaks it in the asker's language instead.
    fixed: Text | None = None
    notices: list[Text] = field(default_factory=list)  # fixed texts the user reads under the reply (a likeness)
    retries: list[str] = field(default_factory=list)  # journaled jobs that failed and may be tried again, by id

    def said(self, voice: Voice = ENGLISH_VOICE) -> str:
        """What the user reads, in `voice`: the reply (a fixed one in that language), then the notices."""
        words = voice(self.fixed) if self.fixed else self.reply
        return "\n\n".join(part for part in (words, *(voice(notice) for notice in self.notices)) if part)

    @classmethod
    def of(cls, outcomes: list[Outcome], reply: str = "") -> TurnResult:
        """The result of image outcomes: their images, failures and refusals, in order."""
        images = [image for o in outcomes if isinstance(o, Drawn) for image in o.images]
        failed = [o for o in outcomes if isinstance(o, Failed)]
        refusals = [o.reason for o in outcomes if isinstance(o, Refused)]
        retries = [o.job_id for o in failed if o.job_id and not isinstance(o.error, JobCancelled)]
        # A drawing's notice (an approximate likeness) is the service's fixed text: the user reads it under the reply.
        notices = [o.notice for o in outcomes if isinstance(o, Drawn) and o.notice]
        # A reply that only repeats a refusal is that fixed text: the user reads it in their own language.
        fixed = next((r for r in refusals if reply.strip() == str(r)), None)
        return cls(reply=reply, images=images, failures=[o.error for o in failed], refusals=refusals, retries=retries,
                   notices=notices, fixed=fixed)  # fmt: skip

    @classmethod
    def direct(cls, outcome: Outcome) -> TurnResult:
        """The result of one image operation that no model talked about (buttons, raw, CLI)."""
        result = cls.of([outcome])
        if result.refusals:
            return cls(reply=str(result.refusals[0]), fixed=result.refusals[0])
        return result


class Agent:
    """Runs turns through the graph, with memory per conversation."""

    def __init__(
        self,
        graph: Any,
        images: ImageService,
        settings: AgentSettings,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        *,
        captioner: Captioner | None = None,
        vision: bool = False,
    ) -> None:
        self._graph = graph
        self.images = images  # the one image service, shared with the buttons, /imagine raw and the CLI
        self._settings = settings
        self._checkpointer = checkpointer
        history = images.history
        self._eyes = Eyes(history, captioner, vision) if history is not None else None

    async def seen(self, who: Requester) -> Seen:
        """What the model is told about this user's images (captions, or thumbnails with vision)."""
        if self._eyes is None:
            return Seen(note="")
        return await self._eyes.look(who.conversation, who.user_id, who.source_id, who.reply_to)

    async def respond(self, turn: TurnRequest) -> TurnResult:
        """Let the model decide: draw (through the tool) or reply in text.

        A turn that fails is not saved: the conversation goes back to where it was before it,
        so a failure can never leave a tool call unanswered in the channel's memory.
        """
        text = normalise_input(turn.text)
        if not text:
            raise EmptyMessage("nothing but whitespace or format characters")
        if len(text) > MAX_INPUT_CHARS:
            raise MessageTooLong(len(text), MAX_INPUT_CHARS)
        who = replace(turn.who, user_words=text)
        seen = await self.seen(who)
        concepts = self.images.concepts
        taught = await concepts.note(who.guild_id) if concepts is not None else ""
        note = "\n\n".join(part for part in (seen.note, taught) if part)
        context = TurnContext(
            images=self.images, who=who, history_note=note, prompt_languages=self.images.languages_for(who)
        )
        command = "/imagine " if turn.must_draw else ""
        replying = " (replying to your message)" if who.reply_to else ""
        if turn.language:
            replying += f" (reply in {turn.language})"
        words = f"[{turn.user_name}]{replying} {command}{text}"
        pictures = [{"type": "image_url", "image_url": {"url": url}} for url in seen.thumbnails]
        message = HumanMessage(
            content=[{"type": "text", "text": words}, *pictures] if pictures else words, id=uuid.uuid4().hex
        )
        config = {
            "configurable": {"thread_id": who.conversation},
            "recursion_limit": 4 * self._settings.max_model_calls + 4,
        }
        outcomes: dict[str, Outcome] = {}  # by tool call id, in the order the tools answered
        state: dict[str, Any] = {}

        async def run() -> None:
            nonlocal state
            # One checkpoint write per turn, at its end, instead of one per step: a turn
            # cut short by a crash is simply asked again, and the images are in the history.
            # Each tool's typed outcome is its message's artifact; the saved state keeps none.
            async for chunk in self._graph.astream(
                {"messages": [message]},
                config=config,
                context=context,
                stream_mode="values",
                durability="exit" if self._checkpointer is not None else None,
            ):
                state = chunk
                for result in chunk.get("messages", []):
                    if isinstance(result, ToolMessage) and isinstance(result.artifact, Drawn | Refused | Failed):
                        outcomes.setdefault(result.tool_call_id, result.artifact)

        try:
            await asyncio.wait_for(run(), timeout=self._settings.turn_timeout_s)
        except Exception as exc:
            await self._forget_turn(config, message.id)
            if isinstance(exc, TimeoutError):
                raise LLMUnavailable(f"turn in {who.conversation} ran past {self._settings.turn_timeout_s}s") from exc
            if isinstance(exc, openai.OpenAIError):
                raise LLMUnavailable(f"LLM call failed: {safe_detail(exc)}") from exc
            raise
        messages = state.get("messages", [])
        result = TurnResult.of(list(outcomes.values()), reply=final_reply(messages))
        return replace(result, fixed=Text(CAP_TEXT)) if capped(messages) else result

    async def _forget_turn(self, config: dict[str, Any], message_id: str | None) -> None:
        """Make the saved conversation what it was before the turn that carried `message_id`."""
        if self._checkpointer is None:
            return
        try:
            async for snapshot in self._graph.aget_state_history(config):
                if any(m.id == message_id for m in snapshot.values.get("messages", [])):
                    continue
                # The newest checkpoint without this turn: copy it forward as the latest.
                await self._graph.aupdate_state(snapshot.config, None, as_node="__copy__")
                return
            await self._checkpointer.adelete_thread(config["configurable"]["thread_id"])
        except Exception:
            # The repair at load (LoadedConversation) still keeps the conversation valid.
            log.exception("could not roll back a failed turn in %s", config["configurable"]["thread_id"])

    async def reset(self, conversation_id: str) -> None:
        """Forget a conversation's memory."""
        if self._checkpointer is not None:
            await self._checkpointer.adelete_thread(conversation_id)


def with_attachment(text: str, *upload_ids: str) -> str:
    """The user's words with their attached images' history ids, in order, as the model sees them."""
    if len(upload_ids) == 1:
        return f"{text}\n(attached image: id={upload_ids[0]})"
    return f"{text}\n(attached images, in order: {', '.join(f'id={i}' for i in upload_ids)})"


def capped(messages: list[Any]) -> bool:
    """Whether the turn ended at a cap: its last word is egaku's fixed text, not the model's."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return False
        if isinstance(message, AIMessage) and message.name == CAP_MESSAGE_NAME:
            return True
    return False


def final_reply(messages: list[Any]) -> str:
    """The text of the turn's last model message."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage) and not message.tool_calls and message.text.strip():
            return message.text.strip()
    return ""
