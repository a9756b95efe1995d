"""Shared fixtures: the loopback guard, the tiny real pipeline, and the local fakes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

GUARD_DIR = Path(__file__).parent / "guard"
sys.path.insert(0, str(GUARD_DIR))

from loopback import install  # noqa: E402

from egaku.config import BackendSettings, Config, LLMSettings, StorageSettings  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.fakes.recording_worker import RecordingWorker  # noqa: E402
from tests.fakes.serving import serve as serve_on_port  # noqa: E402
from tests.fakes.serving import serving_worker  # noqa: E402
from worker.settings import ModelPreset, WorkerSettings  # noqa: E402

if TYPE_CHECKING:
    from worker.engine import Engine

install()
# Subprocesses (the embedded worker, the CLI) get the same guard through sitecustomize.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(GUARD_DIR), str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")) if p
)
# Nothing a test runs may write into the real home folder (~/.local/share/egaku, caches...).
os.environ["HOME"] = tempfile.mkdtemp(prefix="egaku-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


@pytest.fixture(scope="session")
def worker_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder in which the tiny SDXL pipeline has been built once."""
    cache = tmp_path_factory.mktemp("worker-cache")
    tiny_model_dir(cache)
    return cache


def tiny_model_dir(cache: Path) -> Path:
    """The tiny SDXL pipeline folder (the default "tiny" preset), built on first use."""
    from worker.pipelines import tiny_dir

    return tiny_dir(cache, "sdxl")


def strict_safety_checker(cache: Path) -> str:
    """A tiny safety checker that flags every picture (its concept thresholds below any score): a folder."""
    from worker.pipelines import built_once
    from worker.tiny import save_tiny_safety_checker

    def build(directory: Path) -> Path:
        import torch
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

        save_tiny_safety_checker(directory)
        checker = StableDiffusionSafetyChecker.from_pretrained(directory)
        with torch.no_grad():
            checker.concept_embeds_weights.fill_(-2.0)
        checker.save_pretrained(directory)
        return directory

    return str(built_once(cache / "strict-safety", build, "config.json"))


def tiny_worker_settings(cache: Path, **overrides: object) -> WorkerSettings:
    """Worker settings serving the tiny preset (and a second name for it)."""
    tiny = ModelPreset(source="tiny", steps=2, guidance=5.0, width=64, height=64, max_pixels=128 * 128)
    values: dict[str, object] = {
        "cache_dir": str(cache),
        "default_model": "tiny",
        "models": {"tiny": tiny, "tiny-alt": tiny.model_copy(update={"steps": 3})},
        "device": "cpu",
        "segmenter": "tiny",
        "captioner": "tiny",
        "scorer": "tiny",
        "batch_window_s": 0.01,
        "preview_every": 1,
    }
    values.update(overrides)
    return WorkerSettings.model_validate(values)


@pytest.fixture(scope="session")
def engine(worker_cache: Path) -> object:
    """A real Engine over the tiny pipeline, loaded once per session."""
    from worker.engine import Engine

    eng = Engine(tiny_worker_settings(worker_cache))
    eng.load()
    return eng


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve an aiohttp app on a free loopback port; return the runner and base URL."""
    runner, port = await serve_on_port(app)
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def worker_url(engine: object, worker_cache: Path) -> AsyncIterator[str]:
    """The real worker HTTP server over the tiny pipeline."""
    async with serving_worker(engine, tiny_worker_settings(worker_cache)) as url:
        yield url


def teach_settings(cache: Path) -> WorkerSettings:
    """Tiny worker settings whose /teach runs are short: 4 steps in chunks of 2."""
    from worker.settings import TeachSettings

    return tiny_worker_settings(cache, teach=TeachSettings(steps=4, chunk_steps=2))


@pytest.fixture
async def teach_worker(worker_cache: Path) -> AsyncIterator[RecordingWorker]:
    """The real worker with short /teach runs, behind the recording proxy."""
    async with recorded_worker(teach_settings(worker_cache), "tiny") as (_engine, recorder):
        yield recorder


@contextlib.asynccontextmanager
async def recorded_worker(settings: WorkerSettings, *presets: str) -> AsyncIterator[tuple[Engine, RecordingWorker]]:
    """A real worker serving `settings` with `presets` loaded first, behind a recorder; its engine and recorder."""
    from worker.engine import Engine

    engine = Engine(settings)
    for name in presets:
        await asyncio.to_thread(engine.load, name)
    async with serving_worker(engine, settings) as url:
        recorder = RecordingWorker(url)
        await recorder.start()
        try:
            yield engine, recorder
        finally:
            await recorder.stop()


@pytest.fixture
async def recorder(worker_url: str) -> AsyncIterator[RecordingWorker]:
    """The real worker behind a proxy that records what it receives."""
    proxy = RecordingWorker(worker_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """The scripted OpenAI-compatible server."""
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """The local fake Discord."""
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def app_config(tmp_path: Path, worker_cache: Path) -> Iterator[Config]:
    """A config for a remote worker and an OpenAI-compatible LLM (URLs filled in by tests)."""
    yield Config(
        llm=LLMSettings(provider="openai", api_key_env="FAKE_OPENAI_KEY", model="fake-model", max_retries=0),
        storage=StorageSettings(
            path=str(tmp_path / "egaku.sqlite"),
            images_dir=str(tmp_path / "images"),
            history_dir=str(tmp_path / "history"),
        ),
        # A worker that is down stays down in most tests: they want its failure at once, not a wait for it.
        backend=BackendSettings(mode="remote", retry_for_s=0),
        worker=tiny_worker_settings(worker_cache),
    )


FAKE_ENV = {"FAKE_OPENAI_KEY": "sk-test-not-a-secret"}
