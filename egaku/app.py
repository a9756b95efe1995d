"""The composition root: builds every dependency once, from the config, and injects it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.graph import build_graph
from agent.llm import build_chat_model, warm_up
from agent.service import Agent
from egaku.config import Config, read_secret
from egaku.errors import ConfigError
from tools.backends.base import ImageBackend
from tools.backends.embedded import EmbeddedWorker
from tools.backends.openai_images import OpenAIImages
from tools.backends.worker_client import WorkerClient
from tools.checks.languages import PromptLanguages
from tools.checks.limits import JobLimiter
from tools.service.images import ImageService
from tools.service.references import ReferenceModel
from tools.service.teaching import ConceptService
from tools.stores.concepts import ConceptStore
from tools.stores.history import History
from tools.stores.journal import JobJournal
from tools.stores.preferences import Preferences


@dataclass(frozen=True)
class App:
    """The running pieces that a front end (Discord, terminal) drives."""

    agent: Agent
    images: ImageService  # the one image service: the agent's tools, the buttons, /imagine raw, the CLI
    history: History
    preferences: Preferences
    worker: ImageBackend
    session: aiohttp.ClientSession
    embedded: EmbeddedWorker | None
    concepts: ConceptService | None = None  # the servers' taught words (/teach, /concepts)


def prompt_languages(config: Config) -> PromptLanguages:
    """The languages each configured preset reads, for the agent's prompts and their check."""
    by_model = {name: tuple(preset.prompt_language) for name, preset in config.worker.models.items()}
    return PromptLanguages(by_model, by_model.get(config.worker.default_model, ("en",)))


def reference_model(config: Config) -> ReferenceModel | None:
    """The preset the config picked for reference edits and /blend, with how many pictures it reads."""
    read = config.reference_pictures()
    name = config.agent.reference_model
    return ReferenceModel(name, read.edit, read.draw) if name is not None and read is not None else None


@contextlib.asynccontextmanager
async def open_app(config: Config, config_path: Path, environ: Mapping[str, str]) -> AsyncIterator[App]:
    """Start the worker (embedded or remote), memory and agent; tear them down on exit."""
    timeout = aiohttp.ClientTimeout(total=config.worker.request_timeout_s + 30, sock_connect=10)
    db_path = config.storage.db_path
    db_path.parent.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
        embedded: EmbeddedWorker | None = None
        worker: ImageBackend
        if config.backend.mode == "openai":
            # No GPU here: OpenAI's Images API draws ([backend.openai]).
            key_env = config.backend.openai.api_key_env
            key = read_secret(key_env, environ)
            if key is None:
                raise ConfigError(f"backend.openai.api_key_env: set the environment variable {key_env}")
            worker = OpenAIImages(session, config.backend.openai, key, timeout_s=config.worker.request_timeout_s)
        elif config.backend.mode == "embedded":
            embedded = EmbeddedWorker(
                config_path,
                session,
                log_path=db_path.parent / "worker.log",
                startup_timeout_s=config.backend.startup_timeout_s,
            )
            embedded.start()
            stack.push_async_callback(embedded.stop)
            worker = WorkerClient(
                session, embedded.url, token=embedded.token, timeout_s=config.worker.request_timeout_s
            )
        else:
            token = read_secret(config.worker.token_env, environ)
            worker = WorkerClient(session, config.backend.url, token=token, timeout_s=config.worker.request_timeout_s)
        saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(db_path)))
        history_dir = config.storage.history_path
        history = await History.open(history_dir / "history.sqlite", history_dir / "files")
        stack.push_async_callback(history.close)
        preferences = await Preferences.open(config.storage.settings_path)
        stack.push_async_callback(preferences.close)
        concept_store = await ConceptStore.open(history_dir / "concepts.sqlite", history_dir / "concepts")
        stack.push_async_callback(concept_store.close)
        # Every accepted request and image job, next to the history, so that a restart loses none.
        journal = await JobJournal.open(history_dir / "journal.sqlite")
        stack.push_async_callback(journal.close)
        # Words are trained on the egaku worker's default preset; OpenAI's API cannot learn them.
        concepts = ConceptService(concept_store, worker if isinstance(worker, WorkerClient) else None)
        http_client = None
        if config.llm.provider != "embedded":
            import openai

            # This app's own LLM connections, closed with it (see build_chat_model).
            http_client = await stack.enter_async_context(openai.DefaultAsyncHttpxClient())
        # The default drawing preset's adapter teaches the embedded LLM that preset's words ("world").
        drawing = config.worker.models.get(config.worker.default_model)
        model = build_chat_model(config.llm, environ, http_client, drawing.llm_adapter if drawing else None)
        warm_up(model)
        graph = build_graph(model, saver, config.agent)
        limiter = JobLimiter(config.limits)
        images = ImageService(
            worker,
            history=history,
            instruct_model=config.agent.instruct_model,
            references=reference_model(config),
            limiter=limiter,
            blocklist=tuple(config.safety.blocklist),
            safety_check=config.safety.worker_check,
            languages=prompt_languages(config),
            best_of=config.best_of.default,
            max_best_of=config.best_of_cap,
            concepts=concepts,
            journal=journal,
            retry_for_s=config.backend.retry_for_s,
        )
        agent = Agent(graph, images, config.agent, saver, captioner=worker, vision=config.llm.vision)
        yield App(
            agent=agent,
            images=images,
            history=history,
            preferences=preferences,
            worker=worker,
            session=session,
            embedded=embedded,
            concepts=concepts,
        )
