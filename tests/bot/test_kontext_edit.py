"""A reply "make it night" edits through a FLUX.1 Kontext preset, end to end.

Fake Discord, scripted LLM, and a real worker serving the tiny SDXL preset (for the
first picture) and a tiny Kontext preset (for the edit), behind a recorder.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from agent.prompts import INSTRUCT_NOTE
from egaku.config import Config
from tests.bot.test_conversation import KING, NIGHT, linked, live, posts, sha
from tests.conftest import recorded_worker, tiny_worker_settings
from tests.fakes.discord import BOT_ID, CHANNEL_ID, Captured, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from worker.engine import Engine
from worker.settings import ModelPreset, WorkerSettings


async def answer(fake: FakeDiscord, text: str) -> Captured:
    """The bot's final answer with this text (after any "waiting for the GPU" status message)."""
    return await fake.wait_for_request(lambda r: r in posts(fake) and r.json.get("content") == text, timeout=600)


@pytest.fixture
def kontext_settings(worker_cache: Path) -> WorkerSettings:
    """The tiny presets plus a tiny Kontext preset."""
    kontext = ModelPreset(source="tiny", family="flux-kontext", steps=2, guidance=2.5, width=64, height=64)
    plain = tiny_worker_settings(worker_cache)
    return tiny_worker_settings(worker_cache, warmup=False, models={**plain.models, "kontext": kontext})


@pytest.fixture
async def kontext_worker(kontext_settings: WorkerSettings) -> AsyncIterator[tuple[Engine, RecordingWorker]]:
    """The real worker with the Kontext preset loaded, behind a recorder."""
    async with recorded_worker(kontext_settings, "kontext") as (engine, recorder):
        yield engine, recorder


async def test_a_reply_make_it_night_reaches_kontext_with_the_parent_and_a_whole_new_description(
    app_config: Config,
    kontext_settings: WorkerSettings,
    kontext_worker: tuple[Engine, RecordingWorker],
    fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:
    engine, recorder = kontext_worker
    config = Config.model_validate({**app_config.model_dump(), "worker": kontext_settings.model_dump()})
    assert config.agent.instruct_model == "kontext"  # a Kontext preset makes instruction edits the default
    pipe = engine._pipe("kontext", "instruct")
    sources: list[torch.Tensor] = []
    hook = pipe.vae.encoder.register_forward_pre_hook(lambda _m, args: sources.append(args[0].clone()))
    fake_openai.then(
        Call("generate_image", {"prompt": KING, "seed": 7}),
        Say("The squirrel king!"),
        Call("edit_image", {"ref": "reply", "prompt": NIGHT}),  # no mode: the default
        Say("Now at night."),
    )
    try:
        async with live(config, fake_openai, recorder, fake_discord) as app:
            await fake_discord.user_message(f"<@{BOT_ID}> draw the squirrel king")
            first = await answer(fake_discord, "The squirrel king!")
            king = next(m for m in fake_discord.messages.values() if m["content"] == "The squirrel king!")
            # The bot links the picture to its message once Discord has answered the post. A person replies later
            # than that; a test can reply first (seen under load in the full suite), and names no picture then.
            await linked(app.history, king["id"])
            await fake_discord.user_message("make it night", mention_bot=False, reply_to=int(king["id"]))
            second = await answer(fake_discord, "Now at night.")
            history = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    finally:
        hook.remove()
    generate, described, edit = recorder.received
    assert generate.path == "/v1/images/generations"
    # The replied-to picture was captioned once, before the model wrote the edit.
    assert (described.path, described.files) == ("/v1/images/descriptions", {"image": sha(first.files[0].data)})
    # The edit went to the Kontext preset, with the parent image and the whole new description.
    assert edit.path == "/v1/images/edits"
    assert edit.files == {"image": sha(first.files[0].data)}
    assert {k: edit.fields[k] for k in ("prompt", "model", "seed", "size")} == {
        "prompt": NIGHT, "model": "kontext", "seed": "7", "size": "64x64",
    }  # fmt: skip
    assert "strength" not in edit.fields and "mask_prompt" not in edit.fields
    used = edit.answer["data"][0]["parameters"]
    assert (used["mode"], used["model"], used["width"], used["height"]) == ("instruct", "kontext", 64, 64)
    # Kontext's own pipeline encoded exactly the parent's pixels.

    parent = pipe.image_processor.preprocess(Image.open(io.BytesIO(first.files[0].data)).convert("RGB"), 64, 64)
    assert len(sources) == 1 and torch.allclose(sources[0], parent, atol=1e-5)
    assert [(g.kind, g.parent_id, g.model) for g in history] == [
        ("generate", None, "tiny"), ("instruct", history[0].id, "kontext"),
    ]  # fmt: skip
    assert len(second.files) == 1
    # The model was told instruction edits exist and are the default, in the system prompt and the tool.
    request = fake_openai.requests[2]
    assert INSTRUCT_NOTE in request["messages"][0]["content"]
    (tool,) = [t for t in request["tools"] if t["function"]["name"] == "edit_image"]
    mode = tool["function"]["parameters"]["properties"]["mode"]
    assert mode["default"] is None and "'instruct' where instruction edits are available" in mode["description"]
