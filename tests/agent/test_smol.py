"""One real turn through the bundled SmolLM2-135M (offline, CPU) and the tiny worker."""

from __future__ import annotations

import pytest

from agent.graph import build_graph
from agent.service import Agent, TurnRequest
from agent.smol import EmbeddedChatModel, SmolRuntime, find_smollm2, first_sentences, speaker_free
from egaku.config import AgentSettings
from tests.conftest import FAKE_ENV  # noqa: F401  (same fixtures module)
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService


def test_helpers() -> None:
    assert speaker_free("[alice] draw a fox") == "draw a fox"
    text = "One two three. Four five six. " + "word " * 100
    assert first_sentences(text, max_words=5) == "One two three."


@pytest.fixture(scope="module")
def runtime() -> SmolRuntime:
    find_smollm2()  # fails clearly if the package is missing
    return SmolRuntime()


async def test_real_turns_draw_what_was_asked_and_answer_a_greeting_in_words(
    runtime: SmolRuntime, worker_url: str
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        agent = Agent(
            build_graph(EmbeddedChatModel(runtime=runtime), None, AgentSettings()),
            ImageService(WorkerClient(session, worker_url)),
            AgentSettings(),
        )
        drawn = await agent.respond(TurnRequest.of("t", "u", "amy", "draw a red fox in the snow"))
        greeted = await agent.respond(TurnRequest.of("t3", "u", "amy", "hello! nice to meet you"))
        forced = await agent.respond(TurnRequest.of("t2", "u", "amy", "リスの王", must_draw=True))
    # Asked to draw, it draws one picture of what was asked, and says so.
    (picture,) = drawn.images
    assert "fox" in picture.prompt.lower(), picture.prompt
    assert picture.user_words == "draw a red fox in the snow" and picture.png.startswith(b"\x89PNG")
    assert drawn.failures == [] and drawn.reply.strip() and "<|" not in drawn.reply
    # Greeted, it answers in words and draws nothing.
    assert greeted.images == [] and greeted.failures == []
    assert greeted.reply.strip() and "<|" not in greeted.reply
    # /imagine always draws, even when the tiny model cannot translate.
    assert len(forced.images) == 1 and forced.images[0].user_words == "リスの王"
    assert forced.images[0].png.startswith(b"\x89PNG")
