"""Building the chat model from [llm]: an OpenAI-compatible endpoint, Ollama, or the embedded SmolLM2."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.decision import EDIT_TOOL, IMAGE_TOOL, DecidingChatModel, Decision, clean_text, parse_decision, to_message
from egaku.config import LLMSettings, read_secret
from egaku.errors import ConfigError

OLLAMA_URL = "http://127.0.0.1:11434"

JSON_INSTRUCTIONS = (
    "Answer with ONE JSON object and nothing else. To draw something new: "
    '{"action": "draw", "prompt": "<one detailed English description, 40-80 words>"}. '
    "To change an earlier image: "
    '{"action": "edit", "ref": "<id, last, reply, second...>", "mode": "regenerate|subtle|strong|region", '
    '"prompt": "<the whole new English description>", "target": "<region mode: the part to change>"}. '
    "To answer in text: "
    '{"action": "reply", "text": "<your answer in the user\'s language>"}.'
)


def _as_text(message: BaseMessage) -> BaseMessage:
    """Rewrite tool traffic as plain text for a model that knows no tools."""
    if isinstance(message, ToolMessage):
        return HumanMessage(content=f"(result of {message.name or IMAGE_TOOL}: {message.content})")
    if isinstance(message, AIMessage) and message.tool_calls:
        call = message.tool_calls[0]
        action = "edit" if call["name"] == EDIT_TOOL else "draw"
        return AIMessage(content=json.dumps({"action": action, **call["args"]}))
    return message


class JsonToolAdapter(DecidingChatModel):
    """Gives a model without native tool calling the same tool calls, via validated JSON."""

    inner: BaseChatModel
    attempts: int = 2

    @property
    def _llm_type(self) -> str:
        return "egaku-json-tools"

    def _prepare(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        if not self.can_draw:
            return messages
        return [*map(_as_text, messages), SystemMessage(content=JSON_INSTRUCTIONS)]

    def _judge(self, raw: str) -> ChatResult | None:
        """A result for raw output, or None when it should be asked again."""
        decision = parse_decision(raw)
        if decision is None and "{" not in raw and clean_text(raw):
            # Plain prose is a usable reply; broken JSON is not.
            decision = Decision(action="reply", text=raw)
        if decision is None:
            return None
        return ChatResult(generations=[ChatGeneration(message=to_message(decision))])

    def _give_up(self) -> ChatResult:
        fallback = Decision(action="reply", text="Sorry, I got confused. Could you say that again?")
        return ChatResult(generations=[ChatGeneration(message=to_message(fallback))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prepared = self._prepare(messages)
        for _ in range(self.attempts):
            result = self._judge(str(self.inner.invoke(prepared).content))
            if result is not None:
                return result
        return self._give_up()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prepared = self._prepare(messages)
        for _ in range(self.attempts):
            result = self._judge(str((await self.inner.ainvoke(prepared)).content))
            if result is not None:
                return result
        return self._give_up()


def build_chat_model(settings: LLMSettings, environ: Mapping[str, str]) -> BaseChatModel:
    """The chat model [llm] describes. Imports only what that provider needs."""
    if settings.provider == "embedded":
        from agent.smol import EmbeddedChatModel, SmolRuntime

        return EmbeddedChatModel(runtime=SmolRuntime())
    from langchain_openai import ChatOpenAI

    base_url: str | None
    api_key: str | None
    if settings.provider == "ollama":
        # Ollama speaks the OpenAI protocol under /v1; no extra client needed.
        base_url = (settings.base_url or OLLAMA_URL).rstrip("/") + "/v1"
        api_key = read_secret(settings.api_key_env, environ) or "ollama"
    else:
        base_url = settings.base_url
        api_key = read_secret(settings.api_key_env or "OPENAI_API_KEY", environ)
        if api_key is None:
            raise ConfigError(
                f"llm.api_key_env: set the environment variable {settings.api_key_env or 'OPENAI_API_KEY'}"
            )
    model: BaseChatModel = ChatOpenAI(
        model=settings.model,
        base_url=base_url,
        api_key=api_key,  # type: ignore[arg-type]
        temperature=settings.temperature,
        max_completion_tokens=settings.max_tokens,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
    )
    if settings.tool_calling == "json":
        model = JsonToolAdapter(inner=model)
    return model
