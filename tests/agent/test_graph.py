"""Every turn ends well: the saved conversation stays valid whatever fails, and answers are checked.

The fake LLM refuses, as OpenAI does, a conversation with an unanswered tool call; so any
failure that left one behind would break the next turn in the same channel.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agent.messages import UNANSWERED_TEXT, answer_every_tool_call
from egaku.app import App
from egaku.config import Config
from egaku.errors import LLMUnavailable, LLMUnclear, WorkerLost
from tests.agent.test_agent import PROMPT, configured, running, turn
from tests.fakes.broken_worker import BrokenWorker
from tests.fakes.openai import Call, Cut, Fail, FakeOpenAI, Raw, Say, order_error


def wire(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Role and a short text of each non-system message, as the LLM received them."""
    return [(m["role"], str(m.get("content") or "")[:30]) for m in messages if m["role"] != "system"]


async def saved(app: App, conversation: str = "c1") -> list[Any]:
    state = await app.agent._graph.aget_state({"configurable": {"thread_id": conversation}})
    return list(state.values.get("messages", []))


def openai_shape(messages: list[Any]) -> list[dict[str, Any]]:
    """Saved messages in the wire shape the order check reads."""
    shaped: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, ToolMessage):
            shaped.append({"role": "tool", "tool_call_id": m.tool_call_id})
        elif isinstance(m, AIMessage):
            shaped.append({"role": "assistant", "tool_calls": [{"id": c["id"]} for c in m.tool_calls]})
        else:
            shaped.append({"role": "user"})
    return shaped


async def test_the_fake_refuses_an_unanswered_tool_call_as_openai_does() -> None:
    assert order_error([{"role": "user"}, {"role": "assistant", "tool_calls": [{"id": "a"}]}]) == (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: a"
    )
    assert order_error([{"role": "user"}, {"role": "tool", "tool_call_id": "a"}]) is not None
    ok = [{"role": "assistant", "tool_calls": [{"id": "a"}]}, {"role": "tool", "tool_call_id": "a"}, {"role": "user"}]
    assert order_error(ok) is None


async def test_a_worker_dying_mid_render_is_told_and_the_channel_keeps_working(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    dying = BrokenWorker("cut")
    await dying.start()
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "reply": "Here it is!"}), Say("Hello again!"))
    try:
        async with running(configured(app_config, fake_openai.base_url, dying.url)) as app:
            failed = await app.agent.respond(turn("draw a squirrel king"))
            later = await app.agent.respond(turn("hello?"))
            kept = await saved(app)
    finally:
        await dying.stop()
    assert [type(f) for f in failed.failures] == [WorkerLost]
    # The turn ended at the failure (no second model call); the bot tells the user with a fixed text.
    assert (failed.reply, failed.images, len(fake_openai.requests)) == ("", [], 2)
    assert later.reply == "Hello again!"
    assert fake_openai.rejected == []
    assert order_error(openai_shape(kept)) is None


async def bug_in_history(app: App) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug after the render")

    app.images._keep = broken  # type: ignore[method-assign,assignment]


async def nothing(app: App) -> None:
    return None


FailingTurn = tuple[list[Any], Callable[[App], Awaitable[None]], type[Exception]]
FAILURES: dict[str, FailingTurn] = {
    # the LLM fails on its second call, after the tool has run
    "llm-after-tool": ([Call("generate_image", {"prompt": PROMPT}), Fail(500)], nothing, LLMUnavailable),
    # the tool itself crashes with something nobody expected (a bug)
    "tool-crash": ([Call("generate_image", {"prompt": PROMPT})], bug_in_history, RuntimeError),
    # the LLM's answer after the tool is an HTML page
    "html-after-tool": (
        [Call("generate_image", {"prompt": PROMPT}), Raw("<html>502 Bad Gateway</html>", "text/html")],
        nothing,
        LLMUnavailable,
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_turn_that_fails_after_a_tool_call_is_not_saved(
    case: str, app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    script, plant, error = FAILURES[case]
    fake_openai.then(Say("first answer"), *script, Say("still here"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        await app.agent.respond(turn("hi"))
        before = [m.content for m in await saved(app)]
        await plant(app)
        with pytest.raises(error):
            await app.agent.respond(turn("draw a squirrel king"))
        assert [m.content for m in await saved(app)] == before  # the failed turn left nothing behind
        later = await app.agent.respond(turn("are you there?"))
    assert later.reply == "still here"
    assert fake_openai.rejected == []
    assert wire(fake_openai.requests[-1]["messages"]) == [
        ("user", "[alice] hi"), ("assistant", "first answer"), ("user", "[alice] are you there?"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "call",
    [
        Call("edit_image", {"ref": "no-such-image", "prompt": PROMPT}),  # refused: unknown image
        Call("generate_image", {"prompt": PROMPT, "seed": -1}),  # invalid arguments
        Call("generate_image", {"prompt": PROMPT}, more=[("generate_image", {"prompt": PROMPT})]),  # over the cap
    ],
    ids=["refused", "invalid", "over-the-tool-cap"],
)
async def test_every_tool_call_is_answered_when_a_tool_refuses(
    call: Call, app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(call, Say("Sorry, I can't."), Say("still here"))
    config = configured(app_config, fake_openai.base_url, worker_url, max_tool_calls=1)
    async with running(config) as app:
        await app.agent.respond(turn("draw it"))
        later = await app.agent.respond(turn("are you there?"))
        kept = await saved(app)
    assert later.reply == "still here"
    assert fake_openai.rejected == []
    assert order_error(openai_shape(kept)) is None


async def test_a_turn_that_times_out_after_a_tool_call_is_not_saved(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    # The timeout must outlast the drawing on a loaded machine, and the slow answer must outlast the timeout.
    fake_openai.then(Call("generate_image", {"prompt": PROMPT}), Say("too late", delay_s=40.0), Say("on time"))
    config = configured(app_config, fake_openai.base_url, worker_url, turn_timeout_s=8.0)
    async with running(config) as app:
        with pytest.raises(LLMUnavailable, match="ran past"):
            await app.agent.respond(turn("draw a squirrel king"))
        assert await saved(app) == []
        later = await app.agent.respond(turn("hello"))
    assert later.reply == "on time" and fake_openai.rejected == []


async def test_a_first_turn_that_fails_leaves_no_conversation(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT}), Fail(500), Say("fresh start"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        with pytest.raises(LLMUnavailable):
            await app.agent.respond(turn("draw a squirrel king"))
        assert await saved(app) == []
        assert (await app.agent.respond(turn("hello"))).reply == "fresh start"
    assert fake_openai.rejected == []


async def test_a_broken_conversation_on_disk_is_repaired_when_loaded(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Say("first"), Say("repaired"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        await app.agent.respond(turn("hi"))
        # What an older egaku left behind after a worker died mid-render: a call with no result.
        dangling = AIMessage(content="", tool_calls=[{"name": "generate_image", "args": {"prompt": "x"}, "id": "c9"}])
        config = {"configurable": {"thread_id": "c1"}}
        await app.agent._graph.aupdate_state(config, {"messages": [HumanMessage("[alice] draw"), dangling]})
        result = await app.agent.respond(turn("hello?"))
        kept = await saved(app)
    assert result.reply == "repaired"
    assert fake_openai.rejected == []
    sent = fake_openai.requests[-1]["messages"]
    assert sent[-2] == {"role": "tool", "content": UNANSWERED_TEXT, "tool_call_id": "c9"}
    assert order_error(openai_shape(kept)) is None


def test_repair_answers_dangling_calls_and_drops_stray_results() -> None:
    call = AIMessage(content="", tool_calls=[{"name": "generate_image", "args": {}, "id": "a"}], id="1")
    stray = ToolMessage(content="?", tool_call_id="zz", id="2")
    repaired = answer_every_tool_call([HumanMessage("hi", id="0"), call, stray, HumanMessage("again", id="3")])
    assert repaired is not None
    assert [type(m).__name__ for m in repaired] == ["HumanMessage", "AIMessage", "ToolMessage", "HumanMessage"]
    assert (repaired[2].tool_call_id, repaired[2].status) == ("a", "error")
    assert answer_every_tool_call(repaired) is None


async def test_a_cut_off_tool_call_is_retried_once(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Cut("generate_image", '{"prompt": "A regal red squirrel ki'), Say("Here you are."))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        result = await app.agent.respond(turn("draw a squirrel king"))
    assert result.reply == "Here you are."
    assert len(fake_openai.requests) == 2


@pytest.mark.parametrize(
    "answers",
    [
        [Cut("generate_image", '{"prompt": "A regal'), Cut("generate_image", '{"prompt": "A regal red')],
        [Say(""), Say("   ")],
    ],
    ids=["cut-twice", "empty-twice"],
)
async def test_an_unusable_answer_twice_is_told_plainly_and_logged_raw(
    answers: list[Any],
    app_config: Config,
    fake_openai: FakeOpenAI,
    worker_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_openai.then(*answers, Say("next turn works"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        with caplog.at_level(logging.WARNING, logger="agent.graph"), pytest.raises(LLMUnclear) as caught:
            await app.agent.respond(turn("draw a squirrel king"))
        later = await app.agent.respond(turn("hello"))
    assert caught.value.user_text == "Sorry, I couldn't make sense of that request. Could you say it another way?"
    unusable = [r.getMessage() for r in caplog.records if "unusable model answer" in r.getMessage()]
    assert len(unusable) == 2
    if isinstance(answers[0], Cut):
        assert '{"prompt": "A regal red' in unusable[1]  # the raw answer is in the log
    assert later.reply == "next turn works" and fake_openai.rejected == []


@pytest.mark.parametrize(
    "body",
    [
        Raw("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "text/html"),
        Raw('{"id": "x", "choices": [', "application/json"),
        Raw("<html>upstream</html>", "text/html", status=502),
    ],
    ids=["html-200", "invalid-json", "html-502"],
)
async def test_a_body_that_is_not_an_answer_is_the_model_not_answering(
    body: Raw, app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(body)
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        with pytest.raises(LLMUnavailable) as caught:
            await app.agent.respond(turn("hello"))
    assert caught.value.user_text == "My language model is not answering right now. Please try again shortly."


async def test_a_looping_reply_is_cut_and_capped(app_config: Config, fake_openai: FakeOpenAI, worker_url: str) -> None:
    paragraph = "The fox runs through the snowy forest under the moon. It is very happy tonight. "
    fake_openai.then(Say("Here is a story. " + paragraph * 40), Say("x" * 5000))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        looping = await app.agent.respond(turn("tell me a story"))
        long = await app.agent.respond(turn("say x"))
        kept = await saved(app)
    assert looping.reply == "Here is a story. " + paragraph.strip()
    assert len(long.reply) == 1500 and long.reply.endswith("…")
    assert kept[1].content == looping.reply  # the saved conversation holds the cut answer, not the loop
