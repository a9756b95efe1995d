"""The doctor's worker checks against real tiny workers (ready, loading, with a token) and the fake OpenAI server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from egaku.config import OpenAIBackendSettings
from egaku.doctor.findings import Finding
from egaku.doctor.worker_checks import START_REMOTE, check_local, check_openai_images, check_remote
from tests.conftest import serve, tiny_worker_settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.serving import loading_worker
from worker.engine import Engine
from worker.http.server import WorkerServer
from worker.settings import ModelPreset, WorkerSettings

WORKER_TOKEN = "the-workers-token-0123"


def bot_side(**more: object) -> WorkerSettings:
    """The bot's [worker]: the tiny worker's two presets."""
    tiny = ModelPreset(source="tiny", width=64, height=64)
    return WorkerSettings.model_validate({"default_model": "tiny", "models": {"tiny": tiny, "tiny-alt": tiny}, **more})


@contextlib.asynccontextmanager
async def worker_with_token(engine: Engine, cache: Path) -> AsyncIterator[str]:
    server = WorkerServer(engine, tiny_worker_settings(cache), token=WORKER_TOKEN)
    runner, url = await serve(server.app())
    try:
        yield url
    finally:
        await runner.cleanup()


async def test_a_ready_worker(fresh_worker: str, session: aiohttp.ClientSession) -> None:
    assert await check_remote(session, fresh_worker, bot_side(), {}) == [
        Finding("worker", "ok", f"The worker at {fresh_worker} is ready."),
        Finding("worker.presets", "ok", "The worker serves tiny (loaded), tiny-alt."),
        Finding("worker.token", "ok", "The worker asks for no token."),
    ]


async def test_no_worker_there(session: aiohttp.ClientSession) -> None:
    assert await check_remote(session, "http://127.0.0.1:9", bot_side(), {}) == [
        Finding(
            "worker",
            "fail",
            "No worker answers at http://127.0.0.1:9: cannot connect (connection refused: nothing listens there).",
            START_REMOTE,
        )
    ]


async def test_not_a_worker(fake_discord: FakeDiscord, session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{fake_discord.port}"
    assert await check_remote(session, url, bot_side(), {}) == [
        Finding(
            "worker",
            "fail",
            f"{url}/healthz answered 404, which is not an egaku worker's health.",
            "Point backend.url at `egaku worker` (or `egaku serve`): port 7861 unless [worker] port says otherwise.",
        )
    ]


async def test_a_worker_still_loading(worker_cache: Path, session: aiohttp.ClientSession) -> None:
    async with loading_worker(tiny_worker_settings(worker_cache)) as url:
        findings = await check_remote(session, url, bot_side(), {})
    assert findings[:2] == [
        Finding(
            "worker",
            "warn",
            f"The worker at {url} answers, but is still loading its default model.",
            "Wait for it. If it stays loading, the worker's log says why (a model that cannot load keeps it unready).",
        ),
        Finding("worker.presets", "ok", "The worker serves tiny, tiny-alt."),
    ]


async def test_presets_the_worker_does_not_serve(fresh_worker: str, session: aiohttp.ClientSession) -> None:
    flux = ModelPreset(source="black-forest-labs/FLUX.1-schnell", family="flux")
    settings = bot_side()
    settings = settings.model_copy(update={"models": {**settings.models, "schnell": flux}})
    findings = await check_remote(session, fresh_worker, settings, {})
    assert findings[1] == Finding(
        "worker.presets",
        "fail",
        "The bot offers presets the worker does not serve: schnell. The worker serves: tiny (loaded), tiny-alt.",
        "Give the bot and the worker the same [worker.models]: the bot offers its own list in /imagine.",
    )


async def test_the_workers_token(engine: Engine, worker_cache: Path, session: aiohttp.ClientSession) -> None:
    async with worker_with_token(engine, worker_cache) as url:
        settings = bot_side(token_env="EGAKU_WORKER_TOKEN")
        right = await check_remote(session, url, settings, {"EGAKU_WORKER_TOKEN": WORKER_TOKEN})
        wrong = await check_remote(session, url, settings, {"EGAKU_WORKER_TOKEN": "not-the-token"})
        unset = await check_remote(session, url, settings, {})
        none = await check_remote(session, url, bot_side(), {})
    assert right[2] == Finding("worker.token", "ok", "The worker accepts the token in EGAKU_WORKER_TOKEN.")
    assert wrong[2] == Finding(
        "worker.token",
        "fail",
        "The worker refused the token in EGAKU_WORKER_TOKEN (401).",
        "Give EGAKU_WORKER_TOKEN the same value on the bot's host as on the worker's.",
    )
    assert unset[2] == Finding(
        "worker.token",
        "fail",
        "worker.token_env names EGAKU_WORKER_TOKEN, but that environment variable is not set.",
        "Set EGAKU_WORKER_TOKEN to the worker's token: the same value on both hosts.",
    )
    assert none[2] == Finding(
        "worker.token",
        "fail",
        "The worker wants a token, and the bot has none.",
        "Set worker.token_env = \"EGAKU_WORKER_TOKEN\" in the bot's config, and the worker's token in that variable.",
    )


async def test_on_the_worker_host(fresh_worker: str, session: aiohttp.ClientSession) -> None:
    port = int(fresh_worker.rsplit(":", 1)[1])
    here = bot_side(host="0.0.0.0", port=port)
    assert await check_local(session, here) == [
        Finding("worker", "ok", f"The worker at http://127.0.0.1:{port} is ready."),
        Finding("worker.presets", "ok", "The worker serves tiny (loaded), tiny-alt."),
    ]
    assert await check_local(session, here.model_copy(update={"port": 9})) == [
        Finding(
            "worker",
            "warn",
            "No worker answers on this host at http://127.0.0.1:9 yet.",
            "Start it: egaku worker --config PATH (with --host 0.0.0.0 and worker.token_env set, to serve other "
            "hosts).",
        )
    ]


async def test_openais_images_api(fake_openai: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake_openai.api_key = "sk-images-key-0123456789"
    fake_openai.models = ["gpt-image-1"]
    settings = OpenAIBackendSettings(base_url=fake_openai.base_url, api_key_env="IMAGES_KEY")
    base = fake_openai.base_url
    assert await check_openai_images(session, settings, {"IMAGES_KEY": "sk-images-key-0123456789"}) == Finding(
        "worker", "ok", f"OpenAI's Images API at {base} accepts the key in IMAGES_KEY and has the model gpt-image-1."
    )
    unknown = settings.model_copy(update={"model": "dall-e-3"})
    assert await check_openai_images(session, unknown, {"IMAGES_KEY": "sk-images-key-0123456789"}) == Finding(
        "worker",
        "fail",
        f"OpenAI's API at {base} has no model 'dall-e-3'.",
        'Set backend.openai.model to "gpt-image-1", "dall-e-3" or "dall-e-2".',
    )
    wrong = await check_openai_images(session, settings, {"IMAGES_KEY": "sk-wrong-key-99999999"})
    assert (wrong.status, wrong.fix) == ("fail", "Put a valid API key in IMAGES_KEY (platform.openai.com → API keys).")
    assert wrong.message.startswith(f"OpenAI's API at {base} refused the key in IMAGES_KEY (401: Incorrect API key")
    assert await check_openai_images(session, settings, {}) == Finding(
        "worker",
        "fail",
        'backend.mode = "openai", but IMAGES_KEY is not set.',
        "Set IMAGES_KEY to your OpenAI API key.",
    )
