"""Models without native tool calling: validated JSON becomes the same tool call."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.decision import Decision, json_instructions, parse_decision, to_message
from egaku.app import open_app
from egaku.config import Config
from egaku.errors import LLMUnclear
from tests.agent.test_agent import configured, turn
from tests.conftest import FAKE_ENV
from tests.fakes.openai import FakeOpenAI, Say
from tools.image_tools import image_tools

TOOLS = image_tools()


def test_parse_decision_finds_the_first_valid_object() -> None:
    raw = 'Sure! {"oops": 1} then {"action": "draw", "prompt": "a fox in snow"} trailing'
    assert parse_decision(raw) == Decision(action="draw", prompt="a fox in snow")
    assert parse_decision("no json here") is None
    assert parse_decision('{"action": "fly"}') is None


def test_to_message_makes_a_tool_call_or_clean_text() -> None:
    call = to_message(Decision(action="draw", prompt="  a fox\n in snow <|im_end|>"), TOOLS)
    assert call.tool_calls[0]["name"] == "generate_image"
    assert call.tool_calls[0]["args"] == {"prompt": "a fox in snow"}
    assert to_message(Decision(action="reply", text="hi\x00 there"), TOOLS).content == "hi there"
    # A draw with an empty prompt, or a reply with no text, is no decision at all.
    assert parse_decision('{"action": "draw", "prompt": "   "}') is None
    assert parse_decision('{"action": "reply"}') is None
    assert parse_decision('{"action": "reply", "text": "<|im_end|>"}') is None


async def test_json_mode_draws_through_the_same_tool(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    config = configured(app_config, fake_openai.base_url, worker_url)
    config = config.model_copy(update={"llm": config.llm.model_copy(update={"tool_calling": "json"})})
    fake_openai.then(
        Say('Here you go: {"action": "draw", "prompt": "a red fox curled up in fresh snow at dawn"}'),
        Say('{"action": "reply", "text": "Here is your fox!"}'),
    )
    async with open_app(config, Path("unused.toml"), FAKE_ENV) as app:
        result = await app.agent.respond(turn("draw a red fox"))
    assert [i.prompt for i in result.images] == ["a red fox curled up in fresh snow at dawn"]
    assert result.reply == "Here is your fox!"
    assert "tools" not in fake_openai.requests[0]  # the model was never offered native tools
    assert "ONE JSON object" in fake_openai.requests[0]["messages"][-1]["content"]


def test_an_edit_decision_becomes_an_edit_image_call() -> None:
    raw = '{"action": "edit", "ref": "second", "mode": "region", "prompt": "a queen", "target": "the king"}'
    decision = parse_decision(raw)
    assert decision is not None
    (call,) = to_message(decision, TOOLS).tool_calls
    assert (call["name"], call["args"]) == (
        "edit_image",
        {"ref": "second", "prompt": "a queen", "mode": "region", "target": "the king"},
    )


def json_mode(config: Config, llm: FakeOpenAI, worker_url: str) -> Config:
    config = configured(config, llm.base_url, worker_url)
    return config.model_copy(update={"llm": config.llm.model_copy(update={"tool_calling": "json"})})


async def test_json_mode_never_shows_garbage(app_config: Config, fake_openai: FakeOpenAI, worker_url: str) -> None:
    fake_openai.then(Say('{"action": broken'), Say("{{{{"), Say("Just a friendly answer."))
    async with open_app(json_mode(app_config, fake_openai, worker_url), Path("unused.toml"), FAKE_ENV) as app:
        with pytest.raises(LLMUnclear):  # asked twice, then the user is told plainly
            await app.agent.respond(turn("hello"))
        prose = await app.agent.respond(turn("and now?"))
    assert prose.reply == "Just a friendly answer."
    assert len(fake_openai.requests) == 3


@pytest.mark.parametrize(
    "leak",
    [
        # prose repeating egaku's hidden instructions
        "Answer with ONE JSON object and nothing else. To draw something new: use the draw action.",
        # a decision that copied the placeholder
        '{"action": "reply", "text": "<your answer in the user\'s language>"}',
        '{"action": "draw", "prompt": "<one detailed English description, 40-80 words>"}',
        # a reply with no text
        '{"action": "reply"}',
        '{"action": "reply", "text": ""}',
    ],
)
async def test_json_mode_instructions_and_placeholders_never_reach_the_channel(
    leak: str, app_config: Config, fake_openai: FakeOpenAI, worker_url: str
) -> None:
    fake_openai.then(Say(leak), Say('{"action": "reply", "text": "Hello! What shall I draw?"}'))
    async with open_app(json_mode(app_config, fake_openai, worker_url), Path("unused.toml"), FAKE_ENV) as app:
        result = await app.agent.respond(turn("hello"))
    assert (result.reply, result.images) == ("Hello! What shall I draw?", [])
    assert len(fake_openai.requests) == 2  # the leak was refused and asked again


def test_json_mode_offers_instruction_edits_and_leaves_the_mode_to_the_service() -> None:
    """The JSON instructions come from the tools' schema (instruct included), and an edit without a mode keeps none:
    the image service then picks the instruction-edit model where one is configured."""
    assert '"mode": "regenerate|subtle|strong|region|instruct|reference" (optional)' in json_instructions(TOOLS)
    decision = parse_decision('{"action": "edit", "ref": "last", "prompt": "the same fox at night"}')
    assert decision is not None
    (call,) = to_message(decision, TOOLS).tool_calls
    assert (call["name"], call["args"]) == ("edit_image", {"ref": "last", "prompt": "the same fox at night"})


def test_json_mode_picks_up_edit_images_references_from_the_schema() -> None:
    """A new argument of edit_image reaches models without tool calling with no code of its own: the instructions
    show the list and its role choices, and a decision with them becomes the same edit_image call."""
    instructions = json_instructions(TOOLS)
    assert '"references": ["<Other images to take things from, in order after `ref`; optional>"]' in instructions
    assert '"reference_role": "subject|style" (optional)' in instructions
    raw = (
        '{"action": "edit", "ref": "k3m9", "references": ["reply", "x7pq"], "reference_role": "style", '
        '"prompt": "the fox from picture 1 in the brushwork of picture 2 and picture 3"}'
    )
    decision = parse_decision(raw)
    assert decision is not None
    (call,) = to_message(decision, TOOLS).tool_calls
    assert (call["name"], call["args"]) == (
        "edit_image",
        {"ref": "k3m9", "prompt": "the fox from picture 1 in the brushwork of picture 2 and picture 3",
         "references": ["reply", "x7pq"], "reference_role": "style"},
    )  # fmt: skip
    # Past the schema's bound (4 further pictures) it is no decision at all: the model is asked again.
    assert (
        parse_decision('{"action": "edit", "ref": "a", "prompt": "all of them", "references": ["b","c","d","e","f"]}')
        is None
    )
