"""Native-language prompts: the prompt stays in the user's language when the drawing model reads it.

The whole app (agent, image service, worker client) against a real worker serving two
tiny presets: "tiny" (SDXL, English only) and "ja", a tiny Qwen-Image whose byte-level
tokenizer covers Japanese, configured as reading Japanese and English (as rinna's
Japanese Stable Diffusion would be). The fake LLM writes its prompt in the language the
tool's schema asks for, as a model following its instructions does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.prompts import system_prompt
from agent.seeing import history_note
from agent.service import TurnRequest
from egaku.config import Config
from tests.agent.test_agent import configured, running
from tests.conftest import recorded_worker, tiny_worker_settings
from tests.fakes.openai import Call, FakeOpenAI, Script
from tests.fakes.recording_worker import RecordingWorker
from tools.service.requests import ImageOptions
from worker.engine import Engine
from worker.settings import ModelPreset, WorkerSettings

JAPANESE = "夜の東京の路地裏で、赤い提灯の下に座る白い猫。水彩画、柔らかな光、静かな雰囲気。"
ENGLISH = "A white cat sitting under a red paper lantern in a Tokyo back alley at night, watercolour, soft light."
WORDS = "夜の東京で提灯の下の白い猫を描いて"


def prompt_description(body: dict[str, Any]) -> str:
    """What generate_image's schema tells the model about the prompt's language."""
    (tool,) = [t for t in body["tools"] if t["function"]["name"] == "generate_image"]
    return str(tool["function"]["parameters"]["properties"]["prompt"]["description"])


def obedient(body: dict[str, Any]) -> Script:
    """An LLM that keeps Japanese only where the schema says the drawing model reads it."""
    native = "in the user's own language when it is Japanese or English" in prompt_description(body)
    return Call("generate_image", {"prompt": JAPANESE if native else ENGLISH, "reply": "描きました！"})


@pytest.fixture
def two_presets(worker_cache: Path) -> WorkerSettings:
    """The tiny English-only preset, and a tiny Qwen-Image preset reading Japanese and English."""
    ja = ModelPreset(
        source="tiny", family="qwen-image", steps=2, guidance=1.0, width=64, height=64, prompt_language=["ja", "en"]
    )
    plain = tiny_worker_settings(worker_cache)
    return tiny_worker_settings(worker_cache, warmup=False, models={**plain.models, "ja": ja})


@pytest.fixture
async def worker(two_presets: WorkerSettings) -> AsyncIterator[tuple[Engine, RecordingWorker]]:
    """The real worker with both presets loaded, behind a recorder."""
    async with recorded_worker(two_presets, "ja", "tiny") as (engine, recorder):
        yield engine, recorder


def ask(model: str | None) -> TurnRequest:
    return TurnRequest.of(
        conversation_id=f"c-{model}", user_id="u1", user_name="hana", text=WORDS, options=ImageOptions(model=model)
    )


async def test_a_japanese_prompt_reaches_a_japanese_reading_encoder_untranslated(
    app_config: Config, two_presets: WorkerSettings, worker: tuple[Engine, RecordingWorker], fake_openai: FakeOpenAI
) -> None:
    engine, recorder = worker
    pipe = engine._pipe("ja", "generate")
    encoded: list[str] = []

    def read(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        encoded.extend(pipe.tokenizer.batch_decode(kwargs["input_ids"]))

    hook = pipe.text_encoder.register_forward_pre_hook(read, with_kwargs=True)
    fake_openai.responder = obedient
    config = configured(app_config.model_copy(update={"worker": two_presets}), fake_openai.base_url, recorder.url)
    try:
        async with running(config) as app:
            result = await app.agent.respond(ask("ja"))
            [kept] = await app.history.mine("c-ja", "u1")
    finally:
        hook.remove()
    # The model was told, in its system prompt and in the tool's schema, to keep Japanese.
    body = fake_openai.requests[0]
    assert body["messages"][0]["content"] == f"{system_prompt(('ja', 'en'))}\n\n{history_note([])}"
    assert "do not translate them" in prompt_description(body)
    # The Japanese prompt went to the worker, and its encoder read it whole, untranslated.
    [request] = recorder.received
    assert (request.fields["prompt"], request.fields["model"]) == (JAPANESE, "ja")
    assert encoded and all(JAPANESE in text for text in encoded)
    assert (result.reply, len(result.images)) == ("描きました！", 1)
    assert (kept.prompt, kept.prompt_language, kept.model) == (JAPANESE, "ja", "ja")


async def test_an_english_only_preset_still_gets_english(
    app_config: Config, two_presets: WorkerSettings, worker: tuple[Engine, RecordingWorker], fake_openai: FakeOpenAI
) -> None:
    _, recorder = worker
    fake_openai.responder = obedient
    config = configured(app_config.model_copy(update={"worker": two_presets}), fake_openai.base_url, recorder.url)
    async with running(config) as app:
        result = await app.agent.respond(ask(None))  # the default model: "tiny", English only
        [kept] = await app.history.mine("c-None", "u1")
    body = fake_openai.requests[0]
    assert body["messages"][0]["content"] == f"{system_prompt()}\n\n{history_note([])}"
    assert prompt_description(body).startswith("ONE detailed description of the picture, in English (translate")
    [request] = recorder.received
    assert (request.fields["prompt"], request.fields.get("model")) == (ENGLISH, None)
    assert len(result.images) == 1
    assert (kept.prompt_language, kept.model) == ("en", "tiny")


async def test_a_prompt_in_a_language_the_model_cannot_read_is_sent_back_to_be_rewritten(
    app_config: Config, two_presets: WorkerSettings, worker: tuple[Engine, RecordingWorker], fake_openai: FakeOpenAI
) -> None:
    _, recorder = worker
    fake_openai.then(
        Call("generate_image", {"prompt": JAPANESE, "reply": "どうぞ"}),  # ignores the schema
        Call("generate_image", {"prompt": ENGLISH, "reply": "どうぞ"}),
    )
    config = configured(app_config.model_copy(update={"worker": two_presets}), fake_openai.base_url, recorder.url)
    async with running(config) as app:
        result = await app.agent.respond(ask("tiny"))
    # Nothing reached the worker until the prompt was English; the model was told why.
    assert [r.fields["prompt"] for r in recorder.received] == [ENGLISH]
    tool_answer = fake_openai.requests[1]["messages"][-1]
    assert tool_answer["role"] == "tool"
    assert tool_answer["content"] == (
        "Invalid arguments: the tiny model reads English, not Japanese: write `prompt` in English. "
        "Fix them and call again."
    )
    assert (result.reply, len(result.images)) == ("どうぞ", 1)
