"""The image worker: does it answer, is it ready, which presets does it serve and hold, does it take the token."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from pydantic import ValidationError

from egaku.config import OpenAIBackendSettings, read_secret
from egaku.doctor.findings import Finding, fail, ok, warn
from egaku.doctor.http import Answer, call
from worker.protocol import HealthResponse
from worker.settings import WorkerSettings

TIMEOUT_S = 10.0
START_REMOTE = (
    "Start it on the GPU host (egaku worker --config worker.toml --host 0.0.0.0), check backend.url, and that this "
    "host can reach it (a firewall; under Docker Compose the URL is http://worker:7861)."
)


def _health(answer: Answer) -> HealthResponse | None:
    if answer.status != 200:
        return None
    try:
        return HealthResponse.model_validate(answer.body)
    except ValidationError:
        return None


def _presets(health: HealthResponse) -> str:
    names = ", ".join(f"{n} (loaded)" if health.loaded and n in health.loaded else n for n in health.models)
    if health.loaded is None:
        return f"{names} (this worker does not say which are loaded)"
    return names


def _readiness(url: str, health: HealthResponse) -> Finding:
    if health.status == "loading":
        return warn(
            "worker",
            f"The worker at {url} answers, but is still loading its default model.",
            "Wait for it. If it stays loading, the worker's log says why (a model that cannot load keeps it unready).",
        )
    return ok("worker", f"The worker at {url} is ready.")


def _not_a_worker(url: str, answer: Answer) -> Finding:
    return fail(
        "worker",
        f"{url}/healthz answered {answer.status}, which is not an egaku worker's health.",
        "Point backend.url at `egaku worker` (or `egaku serve`): port 7861 unless [worker] port says otherwise.",
    )


async def check_remote(
    session: aiohttp.ClientSession, url: str, settings: WorkerSettings, environ: Mapping[str, str]
) -> list[Finding]:
    """A remote worker (`[backend] mode = "remote"` at `url`): health, the bot's presets there, and the token."""
    url = url.rstrip("/")
    answer = await call(session, "GET", url + "/healthz", timeout_s=TIMEOUT_S)
    if not answer.answered:
        return [fail("worker", f"No worker answers at {url}: {answer.problem}.", START_REMOTE)]
    health = _health(answer)
    if health is None:
        return [_not_a_worker(url, answer)]
    findings = [_readiness(url, health)]
    absent = [name for name in settings.models if name not in health.models]
    if absent:
        findings.append(
            fail(
                "worker.presets",
                f"The bot offers presets the worker does not serve: {', '.join(absent)}. "
                f"The worker serves: {_presets(health)}.",
                "Give the bot and the worker the same [worker.models]: the bot offers its own list in /imagine.",
            )
        )
    else:
        findings.append(ok("worker.presets", f"The worker serves {_presets(health)}."))
    findings.append(await _check_token(session, url, settings.token_env, environ))
    return findings


async def _check_token(
    session: aiohttp.ClientSession, url: str, token_env: str | None, environ: Mapping[str, str]
) -> Finding:
    token = read_secret(token_env, environ)
    if token_env and token is None:
        return fail(
            "worker.token",
            f"worker.token_env names {token_env}, but that environment variable is not set.",
            f"Set {token_env} to the worker's token: the same value on both hosts.",
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await call(session, "GET", url + "/v1/models", headers=headers, timeout_s=TIMEOUT_S)
    if answer.status == 401 and token:
        return fail(
            "worker.token",
            f"The worker refused the token in {token_env} (401).",
            f"Give {token_env} the same value on the bot's host as on the worker's.",
        )
    if answer.status == 401:
        return fail(
            "worker.token",
            "The worker wants a token, and the bot has none.",
            "Set worker.token_env = \"EGAKU_WORKER_TOKEN\" in the bot's config, and the worker's token in that "
            "variable.",
        )
    if answer.status != 200:
        detail = answer.problem or f"it answered {answer.status}"
        return fail("worker.token", f"GET {url}/v1/models failed: {detail}.", START_REMOTE)
    if token:
        return ok("worker.token", f"The worker accepts the token in {token_env}.")
    return ok("worker.token", "The worker asks for no token.")


async def check_local(session: aiohttp.ClientSession, settings: WorkerSettings) -> list[Finding]:
    """On a worker host: the worker on this machine's [worker] host and port, if it runs yet."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    answer = await call(session, "GET", url + "/healthz", timeout_s=TIMEOUT_S)
    if not answer.answered:
        return [
            warn(
                "worker",
                f"No worker answers on this host at {url} yet.",
                "Start it: egaku worker --config PATH (with --host 0.0.0.0 and worker.token_env set, to serve other "
                "hosts).",
            )
        ]
    health = _health(answer)
    if health is None:
        return [_not_a_worker(url, answer)]
    return [_readiness(url, health), ok("worker.presets", f"The worker serves {_presets(health)}.")]


async def check_openai_images(
    session: aiohttp.ClientSession, settings: OpenAIBackendSettings, environ: Mapping[str, str]
) -> Finding:
    """`[backend] mode = "openai"`: OpenAI's Images API takes the key and knows the model."""
    env = settings.api_key_env
    key = read_secret(env, environ)
    if key is None:
        return fail("worker", f'backend.mode = "openai", but {env} is not set.', f"Set {env} to your OpenAI API key.")
    base = settings.base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {key}"}
    answer = await call(session, "GET", f"{base}/models/{settings.model}", headers=headers, timeout_s=TIMEOUT_S)
    if answer.status == 200:
        message = f"OpenAI's Images API at {base} accepts the key in {env} and has the model {settings.model}."
        return ok("worker", message)
    if answer.status == 401:
        return fail(
            "worker",
            f"OpenAI's API at {base} refused the key in {env} (401: {answer.server_message()}).",
            f"Put a valid API key in {env} (platform.openai.com → API keys).",
        )
    if answer.status == 404:
        return fail(
            "worker",
            f"OpenAI's API at {base} has no model {settings.model!r}.",
            'Set backend.openai.model to "gpt-image-1", "dall-e-3" or "dall-e-2".',
        )
    detail = answer.problem or f"it answered {answer.status}: {answer.server_message()}"
    return fail("worker", f"OpenAI's API at {base} could not be asked: {detail}.", "Check backend.openai.base_url.")
