"""The doctor's LLM checks against the fake OpenAI-compatible server: a one-token answer, then a tool call."""

from __future__ import annotations

import aiohttp

from agent.smol import GGUF_FILE, find_smollm2
from egaku.config import LLMSettings
from egaku.doctor.findings import Finding
from egaku.doctor.llm_checks import check_llm
from tests.fakes.openai import Call, Fail, FakeOpenAI, Raw, Say

KEY = "sk-planted-llm-key-0123456789"
ENV = {"LLM_KEY": KEY}
NOT_CHECKED = Finding("llm.tools", "skip", "Not checked: the endpoint did not answer.")
JSON_FIX = (
    'Set llm.tool_calling = "json" (egaku then asks for JSON and turns it into the tool call), or use a model with '
    "tool support."
)


def unanswered(message: str, fix: str) -> list[Finding]:
    """The findings when the one-token request failed: that failure, and the tool check not run."""
    return [Finding("llm.answer", "fail", message, fix), NOT_CHECKED]


def settings_for(fake: FakeOpenAI, **more: object) -> LLMSettings:
    values: dict[str, object] = {"provider": "openai", "base_url": fake.base_url, "api_key_env": "LLM_KEY",
                                 "model": "fake-model", "max_tokens": 300}  # fmt: skip
    return LLMSettings.model_validate({**values, **more})


def answers(fake: FakeOpenAI) -> Finding:
    return Finding("llm.answer", "ok", f"The endpoint at {fake.base_url} answers with the model fake-model.")


async def test_native_tool_calls(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.api_key = KEY
    fake_openai.models = ["fake-model"]
    fake_openai.then(Say("OK"), Call("generate_image", {"prompt": "a red fox sitting in the snow"}))
    findings = await check_llm(session, settings_for(fake_openai), ENV)
    assert findings == [
        answers(fake_openai),
        Finding("llm.tools", "ok", "The model calls the generate_image tool natively when asked to draw."),
    ]
    hello, draw = fake_openai.requests
    assert hello == {"model": "fake-model", "messages": [{"role": "user", "content": "Say OK."}],
                     "temperature": 0.7, "max_completion_tokens": 1, "max_tokens": 1}  # fmt: skip
    # The tools exactly as the agent offers them, under the bot's own token cap.
    assert [t["function"]["name"] for t in draw["tools"]] == ["generate_image", "edit_image"]
    assert draw["tools"][0]["function"]["parameters"]["required"] == ["prompt"]
    assert (draw["max_completion_tokens"], draw["max_tokens"]) == (300, 300)
    assert draw["messages"][1] == {"role": "user", "content": "Draw a red fox sitting in the snow."}


async def test_text_instead_of_a_tool_call(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.then(Say("OK"), Say("Here is a fox: 🦊"))
    findings = await check_llm(session, settings_for(fake_openai), ENV)
    assert findings == [
        answers(fake_openai),
        Finding(
            "llm.tools",
            "fail",
            "The model answered in text when asked to draw, instead of calling the generate_image tool: it does not "
            "call tools natively (or not reliably).",
            JSON_FIX,
        ),
    ]


async def test_tools_refused_by_the_server(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.then(Say("OK"), Fail(400, "registry.ollama.ai/library/gemma:2b does not support tools"))
    findings = await check_llm(session, settings_for(fake_openai), ENV)
    assert findings[1] == Finding(
        "llm.tools",
        "fail",
        "The model refused the tools (400) when asked to draw, instead of calling the generate_image tool: it does "
        "not call tools natively (or not reliably).",
        JSON_FIX,
    )


async def test_json_mode_is_right_for_a_model_without_tools(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.then(Say("OK"), Say('{"action": "draw", "prompt": "a fox"}'))
    findings = await check_llm(session, settings_for(fake_openai, tool_calling="json"), ENV)
    assert findings[1] == Finding(
        "llm.tools",
        "ok",
        'The model answered in text when asked to draw: tool_calling = "json" is the right setting for it.',
    )
    fake_openai.then(Say("OK"), Call("generate_image", {"prompt": "a fox"}))
    findings = await check_llm(session, settings_for(fake_openai, tool_calling="json"), ENV)
    assert findings[1] == Finding(
        "llm.tools", "ok", 'The model calls tools natively too; tool_calling = "native" would work as well.'
    )


async def test_a_wrong_key(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.api_key = "sk-the-right-key-0000"
    findings = await check_llm(session, settings_for(fake_openai), ENV)
    assert findings == unanswered(
        f"The endpoint at {fake_openai.base_url} refused the API key in LLM_KEY (401: Incorrect API key provided: "
        f"sk-{'*' * (len(KEY) - 7)}6789. You can find your API key at https://platform.openai.com/account/api-keys.).",
        "Put a valid key for this endpoint in LLM_KEY.",
    )


async def test_an_unknown_model(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.models = ["gpt-4o-mini"]
    findings = await check_llm(session, settings_for(fake_openai), ENV)
    assert findings == unanswered(
        f"The endpoint at {fake_openai.base_url} has no model 'fake-model' (404: The model `fake-model` does not "
        "exist or you do not have access to it.).",
        f"Set llm.model to one of the names GET {fake_openai.base_url}/models lists, or check llm.base_url.",
    )


async def test_an_ollama_that_is_not_running(session: aiohttp.ClientSession) -> None:
    settings = LLMSettings(provider="ollama", base_url="http://127.0.0.1:9", model="qwen2.5:7b")
    findings = await check_llm(session, settings, {})
    assert findings == unanswered(
        "Nothing answers at http://127.0.0.1:9/v1: cannot connect (connection refused: nothing listens there).",
        "Start Ollama (ollama serve) where llm.base_url points, and pull the model: ollama pull qwen2.5:7b.",
    )


async def test_not_a_chat_completion(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.then(Raw("<html>LM Studio</html>", content_type="text/html"))
    findings = await check_llm(session, settings_for(fake_openai), ENV)
    assert findings == unanswered(
        f"The endpoint at {fake_openai.base_url} answered, but not with an OpenAI-style chat completion.",
        "llm.base_url must be the OpenAI-compatible base (it usually ends in /v1).",
    )


async def test_no_key_in_the_environment(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    findings = await check_llm(session, settings_for(fake_openai), {})
    assert findings == [
        Finding(
            "llm.answer",
            "fail",
            "llm.api_key_env: set the environment variable LLM_KEY.",
            "Set LLM_KEY to the endpoint's API key.",
        ),
        Finding("llm.tools", "skip", "Not checked: the endpoint has no key."),
    ]
    assert fake_openai.requests == []


async def test_the_embedded_model_is_found_without_loading_it(session: aiohttp.ClientSession) -> None:
    findings = await check_llm(session, LLMSettings(provider="embedded"), {})
    path = find_smollm2() / GGUF_FILE
    message = f"The embedded SmolLM2-135M is installed ({path}); it needs no tool calling."
    assert findings == [Finding("llm.answer", "ok", message)]
