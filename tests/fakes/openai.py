"""A local fake of the OpenAI chat completions API, scripted turn by turn.

The real `ChatOpenAI` client talks to it over HTTP on 127.0.0.1. Each request
takes the next scripted answer: a text reply, tool calls, or an HTTP error.
Requests are recorded with their JSON bodies for exact assertions.

It is as strict as OpenAI about the conversation: an assistant message with
`tool_calls` must be followed by a tool message for each call, and a tool message
must answer such a call. A request that breaks this gets OpenAI's own 400, and
is recorded in `rejected`. Once `api_key` is set, another key gets OpenAI's 401; once
`models` is set, another model gets OpenAI's 404 (`model_not_found`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.serving import serve


@dataclass
class Say:
    """Answer with text (after `delay_s`, a slow model)."""

    text: str
    delay_s: float = 0.0


@dataclass
class Call:
    """Answer with one or more tool calls."""

    name: str
    args: dict[str, Any]
    more: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Fail:
    """Answer with an HTTP error."""

    status: int = 500
    message: str = "upstream exploded"


@dataclass
class Cut:
    """Answer with a tool call whose arguments are cut off (not JSON), as at a token cap."""

    name: str
    arguments: str


@dataclass
class Raw:
    """Answer with this body as it is: a broken JSON body, an HTML error page..."""

    body: str
    content_type: str = "application/json"
    status: int = 200


Script = Say | Call | Fail | Cut | Raw


def order_error(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's 400 text for a conversation whose tool calls and results do not pair up, else None."""
    waiting: list[str] = []
    for message in messages:
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in waiting:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'."
                )
            waiting.remove(message["tool_call_id"])
            continue
        if waiting:
            break
        if message.get("role") == "assistant":
            waiting = [call["id"] for call in message.get("tool_calls") or []]
    if waiting:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(waiting)}"
        )
    return None


class FakeOpenAI:
    """POST /v1/chat/completions (JSON and SSE) and GET /v1/models."""

    def __init__(
        self,
        default: str = "ok",
        responder: Callable[[dict[str, Any]], Script] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.script: list[Script] = []
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[str] = []  # the 400s sent for conversations OpenAI would refuse
        self.default = default
        # Answers by looking at each request, for concurrent conversations a script cannot order.
        self.responder = responder
        self.busy_s = 0.0  # time spent handling requests, latency_s not included
        self.latency_s = latency_s  # a model's thinking time, slept before each answer (benchmarks)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.api_key: str | None = None  # when set, requests with another bearer key get a 401
        self.models: list[str] | None = None  # when set, the only model names it serves

    @property
    def base_url(self) -> str:
        """The base URL for ChatOpenAI."""
        return f"http://127.0.0.1:{self.port}/v1"

    def then(self, *items: Script) -> FakeOpenAI:
        """Queue answers, in order."""
        self.script.extend(items)
        return self

    async def start(self, port: int = 0) -> None:
        """Serve on a loopback port (0: a free one)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._model)
        self._runner, self.port = await serve(app, port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _refusal(self, request: web.Request, model: str | None) -> web.Response | None:
        """OpenAI's 401 for a wrong key, or its 404 for a model it does not have; None when neither."""
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and given != self.api_key:
            shown = f"{given[:3]}{'*' * max(0, len(given) - 7)}{given[-4:]}" if len(given) > 7 else given
            error = {"message": f"Incorrect API key provided: {shown}. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}  # fmt: skip
            return web.json_response({"error": error}, status=401)
        if model is not None and self.models is not None and model not in self.models:
            error = {"message": f"The model `{model}` does not exist or you do not have access to it.",
                     "type": "invalid_request_error", "param": None, "code": "model_not_found"}  # fmt: skip
            return web.json_response({"error": error}, status=404)
        return None

    async def _models(self, request: web.Request) -> web.Response:
        refused = self._refusal(request, None)
        names = self.models if self.models is not None else ["fake"]
        body = {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "fake"} for n in names]}
        return refused or web.json_response(body)

    async def _model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        refused = self._refusal(request, name)
        return refused or web.json_response({"id": name, "object": "model", "created": 0, "owned_by": "fake"})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        started = time.perf_counter()
        try:
            return await self._answer(request)
        finally:
            self.busy_s += time.perf_counter() - started

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        refused = self._refusal(request, body.get("model"))
        if refused is not None:
            return refused
        problem = order_error(body.get("messages") or [])
        if problem is not None:
            self.rejected.append(problem)
            error = {"message": problem, "type": "invalid_request_error", "param": "messages", "code": None}
            return web.json_response({"error": error}, status=400)
        if self.script:
            item = self.script.pop(0)
        elif self.responder is not None:
            item = self.responder(body)
        else:
            item = Say(self.default)
        if isinstance(item, Fail):
            return web.json_response({"error": {"message": item.message, "type": "server_error"}}, status=item.status)
        if isinstance(item, Raw):
            headers = {"Content-Type": item.content_type}
            return web.Response(body=item.body.encode(), status=item.status, headers=headers)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if isinstance(item, Say):
            await asyncio.sleep(item.delay_s)
            message["content"] = item.text
        elif isinstance(item, Cut):
            call = {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}  # fmt: skip
            message["tool_calls"] = [call]
            finish = "length"
        else:
            calls = [(item.name, item.args), *item.more]
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:8]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for name, args in calls
            ]
            finish = "tool_calls"
        if body.get("stream"):
            return await self._stream(request, body, message, finish)
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], message: dict[str, Any], finish: str
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        delta: dict[str, Any] = {"role": "assistant", "content": message["content"] or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
        for chunk in (
            {"index": 0, "delta": delta, "finish_reason": None},
            {"index": 0, "delta": {}, "finish_reason": finish},
        ):
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [chunk],
            }
            await resp.write(f"data: {json.dumps(data)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
