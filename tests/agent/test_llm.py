"""The chat model [llm] builds: the token cap in a form every supported server reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.decision import json_instructions, leaks_instructions
from agent.llm import build_chat_model, warm_up
from egaku.app import open_app
from egaku.config import Config, LLMSettings
from tests.agent.test_agent import turn
from tests.conftest import FAKE_ENV
from tests.fakes.openai import FakeOpenAI, Say
from tools.image_tools import image_tools


@pytest.mark.parametrize(
    ("provider", "base_url", "extra"),
    [
        ("openai", None, None),
        ("openai", "https://api.openai.com/v1", None),
        ("openai", "http://127.0.0.1:8080/v1", {"max_tokens": 321}),  # llama.cpp's server, vLLM, LM Studio
        ("ollama", None, {"max_tokens": 321}),
    ],
)
def test_the_cap_is_sent_as_max_tokens_to_every_server_but_openais_own(
    provider: str, base_url: str | None, extra: dict[str, int] | None
) -> None:
    settings = LLMSettings(provider=provider, base_url=base_url, api_key_env="K", max_tokens=321)  # type: ignore[arg-type]
    model = build_chat_model(settings, {"K": "sk-not-a-secret"})
    assert model.max_tokens == 321  # type: ignore[attr-defined]  # sent as max_completion_tokens
    assert model.extra_body == extra  # type: ignore[attr-defined]


def test_instruction_leaks_are_recognised() -> None:
    instructions = json_instructions(image_tools())
    assert leaks_instructions("<your answer in the user's language>", instructions)
    assert leaks_instructions("OK! I will answer with one JSON object and nothing else.", instructions)
    assert not leaks_instructions("Here is your fox, drawn in the snow at dawn!", instructions)
    assert not leaks_instructions("リスの王様を描きました！", instructions)
    assert not leaks_instructions("a photo of <our-mascot> on the moon", instructions)  # a taught concept


def test_each_app_owns_its_llm_connections_so_a_second_event_loop_reaches_the_same_server(
    app_config: Config,
) -> None:
    """Two event loops, one base URL: langchain-openai's cached client would carry the first loop's
    connections into the second ("Event loop is closed"), as in a test suite or an embedding process."""

    async def one_turn(port: int, text: str) -> tuple[int, str]:
        fake = FakeOpenAI()
        fake.then(Say(text))
        await fake.start(port)
        try:
            llm = app_config.llm.model_copy(update={"base_url": fake.base_url})
            async with open_app(app_config.model_copy(update={"llm": llm}), Path("unused.toml"), FAKE_ENV) as app:
                result = await app.agent.respond(turn("hello"))
        finally:
            await fake.stop()
        return fake.port, result.reply

    port, first = asyncio.run(one_turn(0, "Hello from the first loop!"))
    again, second = asyncio.run(one_turn(port, "Hello from the second loop!"))
    assert (again, first, second) == (port, "Hello from the first loop!", "Hello from the second loop!")


def test_the_embedded_model_learns_the_world_only_where_a_preset_names_the_adapter() -> None:
    from agent.smol import EmbeddedChatModel
    from training.agent.conversations import vocabulary

    general = build_chat_model(LLMSettings(provider="embedded"), {})
    world = build_chat_model(LLMSettings(provider="embedded"), {}, llm_adapter="world")
    assert isinstance(general, EmbeddedChatModel) and general.runtime.world is None
    assert isinstance(world, EmbeddedChatModel) and world.runtime.world == vocabulary()
    # A real LLM needs no adapter: it is left as it is.
    settings = LLMSettings(provider="openai", api_key_env="K")
    assert type(build_chat_model(settings, {"K": "sk-x"}, llm_adapter="world")).__name__ == "ChatOpenAI"


def test_an_unknown_adapter_names_the_shipped_ones() -> None:
    from egaku.errors import ConfigError

    with pytest.raises(ConfigError, match=r"llm_adapter 'nope': no adapter there \(shipped: world\)"):
        build_chat_model(LLMSettings(provider="embedded"), {}, llm_adapter="nope")


def test_only_a_model_in_this_process_is_loaded_ahead_of_the_first_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.smol import EmbeddedChatModel, SmolRuntime

    started: list[str] = []
    monkeypatch.setattr(SmolRuntime, "load_in_background", lambda self: started.append("smollm2"))
    embedded = build_chat_model(LLMSettings(provider="embedded"), {})
    assert started == []  # building it loads nothing (tests build many)
    warm_up(embedded)
    assert isinstance(embedded, EmbeddedChatModel) and started == ["smollm2"]
    warm_up(build_chat_model(LLMSettings(provider="openai", api_key_env="K"), {"K": "sk-x"}))
    assert started == ["smollm2"]  # a served model has nothing to load here
