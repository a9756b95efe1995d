"""Building the chat model from [llm]: an OpenAI-compatible endpoint, Ollama, or the embedded SmolLM2."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.decision import (
    REPLY,
    DecidingChatModel,
    Decision,
    clean_text,
    json_instructions,
    leaks_instructions,
    parse_decision,
    to_message,
)
from egaku.config import LLMSettings, read_secret
from egaku.errors import ConfigError
from tools.image_tools import VERBS

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

OLLAMA_URL = "http://127.0.0.1:11434"
OPENAI_HOST = "api.openai.com"


def _as_text(message: BaseMessage) -> BaseMessage:
    """Rewrite tool traffic as plain text for a model that knows no tools: calls as the JSON it would write."""
    if isinstance(message, ToolMessage):
        return HumanMessage(content=f"(result of {message.name or 'the tool'}: {message.content})")
    if isinstance(message, AIMessage) and message.tool_calls:
        call = message.tool_calls[0]
        verb = next((v for v, name in VERBS.items() if name == call["name"]), call["name"])
        return AIMessage(content=json.dumps({"action": verb, **call["args"]}, ensure_ascii=False))
    return message


class JsonToolAdapter(DecidingChatModel):
    """Gives a model without native tool calling the same tool calls, via validated JSON."""

    inner: BaseChatModel

    @property
    def _llm_type(self) -> str:
        return "egaku-json-tools"

    def _prepare(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        if not self.can_draw:
            return messages
        return [*map(_as_text, messages), SystemMessage(content=json_instructions(self.tools))]

    def _judge(self, raw: str) -> ChatResult:
        """The decision in raw output, strictly validated; an empty answer when there is none.

        An empty answer is unusable: the agent asks once more, then tells the user plainly
        (`agent.graph.ModelCall`). Hidden instructions and placeholders never pass.
        """
        decision = parse_decision(raw)
        if decision is None and "{" not in raw and clean_text(raw):
            decision = Decision(action=REPLY, text=raw)  # plain prose is a usable reply; broken JSON is not
        said = " ".join(str(v) for v in (decision.text, *decision.arguments.values()) if v) if decision else ""
        if decision is not None and leaks_instructions(said, json_instructions(self.tools)):
            decision = None
        if decision is None:
            log.warning("unusable JSON decision from the model: %r", raw[:2000])
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
        return ChatResult(generations=[ChatGeneration(message=to_message(decision, self.tools))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._judge(str(self.inner.invoke(self._prepare(messages)).content))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._judge(str((await self.inner.ainvoke(self._prepare(messages))).content))


@dataclass(frozen=True)
class Endpoint:
    """Where an OpenAI-compatible [llm] points: its base URL (None: OpenAI's), its key, and whether it is OpenAI's."""

    base_url: str | None
    api_key: str
    official: bool

    @property
    def url(self) -> str:
        """The base URL, OpenAI's when none is set."""
        return (self.base_url or f"https://{OPENAI_HOST}/v1").rstrip("/")

    def extra_caps(self, max_tokens: int) -> dict[str, int]:
        """The token cap sent besides `max_completion_tokens`.

        OpenAI reads `max_completion_tokens` (and refuses `max_tokens` for its reasoning models);
        llama.cpp's server, Ollama and LM Studio read only `max_tokens`; vLLM reads either.
        Anything that is not OpenAI's own API gets both, so the cap holds everywhere.
        """
        return {} if self.official else {"max_tokens": max_tokens}


def endpoint(settings: LLMSettings, environ: Mapping[str, str]) -> Endpoint:
    """The endpoint of an "openai" or "ollama" [llm]; a ConfigError names the unset key variable."""
    if settings.provider == "ollama":
        # Ollama speaks the OpenAI protocol under /v1; no extra client needed.
        base_url = (settings.base_url or OLLAMA_URL).rstrip("/") + "/v1"
        return Endpoint(base_url, read_secret(settings.api_key_env, environ) or "ollama", official=False)
    env = settings.api_key_env or "OPENAI_API_KEY"
    api_key = read_secret(env, environ)
    if api_key is None:
        raise ConfigError(f"llm.api_key_env: set the environment variable {env}")
    official = urlsplit(settings.base_url or f"https://{OPENAI_HOST}").hostname == OPENAI_HOST
    return Endpoint(settings.base_url, api_key, official)


def warm_up(model: BaseChatModel) -> None:
    """Start loading a model that runs in this process (the embedded SmolLM2) while the rest starts.

    Without it the first turn waited ~20 s for the load; a served model has nothing to load.
    """
    from agent.smol import EmbeddedChatModel

    if isinstance(model, EmbeddedChatModel):
        model.runtime.load_in_background()


def build_chat_model(
    settings: LLMSettings,
    environ: Mapping[str, str],
    http_client: openai.DefaultAsyncHttpxClient | None = None,
    llm_adapter: str | None = None,
) -> BaseChatModel:
    """The chat model [llm] describes. Imports only what that provider needs.

    Pass `http_client` (owned and closed by the caller) wherever more than one event loop may run in
    the process: without it, langchain-openai shares one cached client per base URL, whose
    connections stay bound to the first loop that used them ("Event loop is closed" in the next).
    `llm_adapter` (the drawing preset's, e.g. "world") teaches the embedded model that preset's words;
    other providers ignore it.
    """
    if settings.provider == "embedded":
        from agent.smol import EmbeddedChatModel, SmolRuntime, find_adapter

        adapter = find_adapter(llm_adapter) if llm_adapter else None
        return EmbeddedChatModel(runtime=SmolRuntime(adapter=adapter))
    from langchain_openai import ChatOpenAI

    point = endpoint(settings, environ)
    model: BaseChatModel = ChatOpenAI(
        model=settings.model,
        base_url=point.base_url,
        api_key=point.api_key,  # type: ignore[arg-type]
        temperature=settings.temperature,
        max_completion_tokens=settings.max_tokens,
        extra_body=point.extra_caps(settings.max_tokens) or None,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        http_async_client=http_client,
    )
    if settings.tool_calling == "json":
        model = JsonToolAdapter(inner=model)
    return model
