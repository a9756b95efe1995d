"""The real agent with the real ChatOpenAI client against the scripted fake server and the real tiny worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.middleware import CAP_TEXT
from agent.service import Agent, TurnRequest
from egaku.app import App, open_app
from egaku.config import Config
from egaku.errors import LLMUnavailable, WorkerUnavailable
from tests.conftest import FAKE_ENV
from tests.fakes.openai import Call, Fail, FakeOpenAI, Say
from tools.service.requests import Draw, Drawn


def configured(config: Config, llm_url: str, worker_url: str, **agent: object) -> Config:
    """The test config pointed at the fakes."""
    return config.model_copy(
        update={
            "llm": config.llm.model_copy(update={"base_url": llm_url}),
            "backend": config.backend.model_copy(update={"url": worker_url}),
            "agent": config.agent.model_copy(update=agent),
        }
    )


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[App]:
    async with open_app(config, Path("unused.toml"), FAKE_ENV) as app:
        yield app


def turn(text: str, conversation: str = "c1", user: str = "alice") -> TurnRequest:
    return TurnRequest.of(conversation_id=conversation, user_id=f"id-{user}", user_name=user, text=text)


PROMPT = (
    "A regal red squirrel king seated on a mossy tree-stump throne in an autumn forest, tiny golden crown, "
    "velvet cape, warm late-afternoon light, storybook watercolour illustration"
)


async def test_tool_call_arguments_reach_the_worker_exactly(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    args = {"prompt": PROMPT, "negative_prompt": "blurry", "aspect": "16:9", "seed": 1234, "reply": "描きました！"}
    fake_openai.then(Call("generate_image", args), Say("a second call nobody should make"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        result = await app.agent.respond(turn("リスの王を描いて"))
        saved = (await app.agent._graph.aget_state({"configurable": {"thread_id": "c1"}})).values["messages"]
    # One model call: the reply was written in the tool call, and the turn ended when the picture was made.
    assert len(fake_openai.requests) == 1
    assert result.reply == "描きました！"
    assert [type(m).__name__ for m in saved] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert saved[-1].content == "描きました！"
    assert saved[2].content.startswith("Done: 1 image(s) drawn (seed 1234, 80x48, model tiny, id ")
    assert len(result.images) == 1
    image = result.images[0]
    assert (image.prompt, image.negative_prompt, image.seed) == (PROMPT, "blurry", 1234)
    assert (image.width, image.height, image.model, image.user_words) == (80, 48, "tiny", "リスの王を描いて")
    assert image.png.startswith(b"\x89PNG")
    # The model saw the user's words and the tool schema, and never any image bytes.
    first = fake_openai.requests[0]
    assert first["model"] == "fake-model"
    # Every call is bounded, in both spellings: llama.cpp's server, Ollama and LM Studio read only `max_tokens`.
    assert (first["max_completion_tokens"], first["max_tokens"]) == (app_config.llm.max_tokens,) * 2
    assert first["messages"][-1] == {"role": "user", "content": "[alice] リスの王を描いて"}
    assert [t["function"]["name"] for t in first["tools"]] == ["generate_image", "edit_image"]
    assert "reply" in first["tools"][0]["function"]["parameters"]["properties"]
    assert "iVBOR" not in str(fake_openai.requests)  # no base64 PNG anywhere in the LLM traffic


async def test_a_drawing_without_a_reply_asks_the_model_for_one(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT}), Say("Here it is."))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        result = await app.agent.respond(turn("draw a squirrel king"))
    assert (result.reply, len(result.images), len(fake_openai.requests)) == ("Here it is.", 1, 2)
    tool_result = fake_openai.requests[1]["messages"][-1]
    assert tool_result["role"] == "tool" and "Reply in one or two short sentences" in tool_result["content"]


async def test_a_refusal_goes_back_to_the_model_even_with_a_reply(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(
        Call("edit_image", {"ref": "the dragon one", "prompt": PROMPT, "reply": "Done!"}),
        Say("I can't find that picture."),
    )
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        result = await app.agent.respond(turn("make the dragon one blue"))
    assert (result.reply, result.images, len(fake_openai.requests)) == ("I can't find that picture.", [], 2)


async def test_chat_without_drawing_gets_text_only(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Say("Hello! What shall I draw?"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        result = await app.agent.respond(turn("hi there"))
    assert (result.reply, result.images, result.failures) == ("Hello! What shall I draw?", [], [])
    assert len(fake_openai.requests) == 1


async def test_memory_survives_a_restart(app_config: Config, fake_openai: FakeOpenAI, worker_url: str) -> None:
    config = configured(app_config, fake_openai.base_url, worker_url)
    fake_openai.then(Say("Nice to meet you, Alice."), Say("You said your name is Alice."))
    async with running(config) as app:
        await app.agent.respond(turn("my name is Alice"))
    async with running(config) as app:  # a fresh process would do exactly this
        await app.agent.respond(turn("what is my name?"))
        await app.agent.respond(turn("other room", conversation="c2"))
    history = [m["content"] for m in fake_openai.requests[1]["messages"] if m["role"] != "system"]
    assert history == ["[alice] my name is Alice", "Nice to meet you, Alice.", "[alice] what is my name?"]
    other = [m["content"] for m in fake_openai.requests[2]["messages"] if m["role"] != "system"]
    assert other == ["[alice] other room"]


async def test_reset_forgets_the_conversation(app_config: Config, fake_openai: FakeOpenAI, worker_url: str) -> None:
    fake_openai.then(Say("one"), Say("two"))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        await app.agent.respond(turn("first"))
        await app.agent.reset("c1")
        await app.agent.respond(turn("second"))
    assert [m["content"] for m in fake_openai.requests[1]["messages"] if m["role"] != "system"] == ["[alice] second"]


async def test_a_model_that_calls_tools_forever_is_stopped(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(*[Call("generate_image", {"prompt": f"a fox number {i}"}) for i in range(10)])
    config = configured(app_config, fake_openai.base_url, worker_url, max_model_calls=3, max_tool_calls=1)
    async with running(config) as app:
        result = await app.agent.respond(turn("draw foxes forever"))
    assert len(fake_openai.requests) == 3
    assert len(result.images) == 1  # the second and third calls were refused by the tool cap
    assert result.reply == CAP_TEXT


async def test_the_cap_on_tool_calls_counts_edits_too(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    edits = [Call("edit_image", {"ref": "last", "prompt": f"a fox number {i}", "mode": "subtle"}) for i in range(10)]
    fake_openai.then(Call("generate_image", {"prompt": "a fox"}), *edits)
    config = configured(app_config, fake_openai.base_url, worker_url, max_model_calls=4, max_tool_calls=2)
    async with running(config) as app:
        result = await app.agent.respond(turn("draw a fox, then keep changing it"))
    assert len(fake_openai.requests) == 4
    assert [i.kind for i in result.images] == ["generate", "subtle"]  # the later edits were refused by the cap
    assert result.reply == CAP_TEXT


async def test_injected_arguments_become_a_tool_error_and_a_plain_answer(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(
        Call("generate_image", {"prompt": "a fox", "seed": -1, "aspect": "100:1"}),
        Say("Sorry, I can't use those settings."),
    )
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        result = await app.agent.respond(turn("draw a fox with seed -1"))
    assert result.images == [] and result.reply == "Sorry, I can't use those settings."
    tool_message = fake_openai.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "error" in tool_message["content"].lower()


async def test_worker_down_is_reported_not_raised(app_config: Config, fake_openai: FakeOpenAI) -> None:
    fake_openai.then(Call("generate_image", {"prompt": "a fox in the snow", "reply": "Here!"}), Say("Sorry!"))
    async with running(configured(app_config, fake_openai.base_url, "http://127.0.0.1:9")) as app:
        result = await app.agent.respond(turn("draw a fox"))
    # The turn ends at the failure, with no second model call; the bot posts the fixed text for it.
    assert (result.images, result.reply, len(fake_openai.requests)) == ([], "", 1)
    assert [type(f) for f in result.failures] == [WorkerUnavailable]


async def test_llm_failure_becomes_llm_unavailable(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Fail(500))
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        with pytest.raises(LLMUnavailable):
            await app.agent.respond(turn("hello"))


async def test_raw_draw_skips_the_model(app_config: Config, fake_openai: FakeOpenAI, worker_url: str) -> None:
    async with running(configured(app_config, fake_openai.base_url, worker_url)) as app:
        outcome = await app.images.draw(turn("描く: a fox, ukiyo-e").who, Draw("描く: a fox, ukiyo-e"))
    assert fake_openai.requests == []
    assert isinstance(outcome, Drawn)
    assert [i.prompt for i in outcome.images] == ["描く: a fox, ukiyo-e"]


def test_agent_type_is_exported() -> None:
    assert Agent.respond.__doc__


async def test_saved_conversations_stay_small_and_are_written_once_per_turn(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(*(Say(f"a{n}") for n in range(1, 7)))
    config = configured(app_config, fake_openai.base_url, worker_url, history_messages=4)
    async with running(config) as app:
        for n in range(1, 7):
            await app.agent.respond(turn(f"h{n}"))
        thread = {"configurable": {"thread_id": "c1"}}
        state = await app.agent._graph.aget_state(thread)
        checkpoints = [c async for c in app.agent._checkpointer.alist(thread)]
    saved = [m.content for m in state.values["messages"]]
    assert saved == ["[alice] h5", "a5", "[alice] h6", "a6"]  # older turns were dropped from the state
    seen = [m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] != "system"]
    assert seen == ["[alice] h5", "a5", "[alice] h6"]
    assert len(checkpoints) == 6  # one write per turn, not one per step


def test_a_reply_that_only_repeats_a_refusal_is_spoken_in_the_askers_language() -> None:
    from agent.service import TurnResult
    from egaku.errors import UnknownImage
    from egaku.i18n import Catalogs, Text
    from tools.service.requests import Refused

    refusal = Text(UnknownImage.user_text)
    japanese = Catalogs.load().voice("ja")
    repeated = TurnResult.of([Refused(refusal)], reply=str(refusal))
    assert repeated.fixed == refusal
    assert repeated.said(japanese) == japanese(refusal) != str(refusal)
    # The model's own words about it stay its words.
    words = "I couldn't find that one; which picture did you mean?"
    explained = TurnResult.of([Refused(refusal)], reply=words)
    assert explained.fixed is None and explained.said(japanese) == words
