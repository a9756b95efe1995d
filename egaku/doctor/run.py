"""`egaku doctor`: every check in order, over one HTTP session, into one report with secrets masked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from egaku.config import Config, StorageSettings, load_config, read_secret
from egaku.doctor.discord_account import check_intents, check_token, no_token
from egaku.doctor.discord_api import DiscordAPI
from egaku.doctor.discord_commands import bot_commands, check_commands
from egaku.doctor.discord_permissions import check_servers
from egaku.doctor.findings import Finding, Report, fail, ok, skip
from egaku.doctor.host import FreeSpace, GpuProbe, check_disk, check_gpu, cuda_gpus, free_bytes
from egaku.doctor.llm_checks import check_llm
from egaku.doctor.worker_checks import check_local, check_openai_images, check_remote
from egaku.errors import ConfigError

log = logging.getLogger(__name__)

# One session for every check; each request also sets its own, shorter limit.
SESSION_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)
DISCORD_LATER = ("discord.intents", "discord.servers", "discord.commands")


@dataclass(frozen=True)
class Probes:
    """What the host checks read from this machine; tests pass their own."""

    gpus: GpuProbe = cuda_gpus
    free: FreeSpace = free_bytes


def secrets(config: Config, environ: Mapping[str, str]) -> list[str | None]:
    """The values of every secret the config names (`*_env` keys), for masking."""
    names = (config.discord.token_env, config.llm.api_key_env, config.worker.token_env,
             config.backend.openai.api_key_env)  # fmt: skip
    return [read_secret(name, environ) for name in names]


async def _guarded(check: str, run: Callable[[], Awaitable[list[Finding]]]) -> list[Finding]:
    """A check's findings; a bug inside a check becomes a finding, not a traceback."""
    try:
        return await run()
    except Exception as exc:
        log.debug("the %s check crashed", check, exc_info=True)
        return [fail(check, f"The check itself failed ({type(exc).__name__}).",
                     "Run egaku -v doctor to see why, and report it as a bug.")]  # fmt: skip


async def drawing_channels(storage: StorageSettings) -> dict[int, list[int]]:
    """The channels each server chose with /settings server, when the bot has a settings store yet."""
    from tools.stores.preferences import Preferences

    if not storage.settings_path.exists():
        return {}
    store = await Preferences.open(storage.settings_path)
    try:
        policies = await store.guilds()
    finally:
        await store.close()
    return {int(gid): [int(c) for c in policy.channels] for gid, policy in policies.items() if policy.channels}


async def check_discord(session: aiohttp.ClientSession, config: Config, environ: Mapping[str, str]) -> list[Finding]:
    """The token, then the intents, the servers and channels, and the slash commands."""
    settings = config.discord
    token = read_secret(settings.token_env, environ)
    if token is None:
        return [no_token(settings.token_env), *(skip(c, "Not checked: no Discord token.") for c in DISCORD_LATER)]
    api = DiscordAPI(session, settings.api_base, token)
    token_finding, bot = await check_token(api, settings.token_env)
    if bot is None:
        return [token_finding, *(skip(c, "Not checked: the token did not log in.") for c in DISCORD_LATER)]
    intents, app = await check_intents(api, settings)
    findings = [token_finding, intents]
    findings += await check_servers(api, bot, settings, await drawing_channels(config.storage))
    if app is None:
        return [*findings, skip("discord.commands", "Not checked: the application could not be read.")]
    return findings + await check_commands(api, app.id, settings, await bot_commands())


async def check_worker(session: aiohttp.ClientSession, config: Config, environ: Mapping[str, str]) -> list[Finding]:
    """The worker the bot draws with: embedded here, remote, or OpenAI's Images API."""
    backend = config.backend
    if backend.mode == "openai":
        return [await check_openai_images(session, backend.openai, environ)]
    if backend.mode == "remote":
        return await check_remote(session, backend.url, config.worker, environ)
    names = ", ".join(config.worker.models)
    return [ok("worker", f"The worker is embedded: `egaku bot` starts it on this host, with the presets {names}.")]


async def diagnose(
    path: Path, environ: Mapping[str, str], *, worker_host: bool = False, probes: Probes | None = None
) -> Report:
    """Run every check that applies to this host, in order; the report never holds a secret."""
    probes = probes or Probes()
    try:
        config = load_config(path)
    except ConfigError as exc:
        fix = "Correct that key: config.example.toml documents every key."
        return Report(str(path), (fail("config", str(exc), fix),))
    findings = [ok("config", f"{path} is valid.")]
    async with aiohttp.ClientSession(timeout=SESSION_TIMEOUT) as session:
        if worker_host:
            findings += await _guarded("worker", lambda: check_local(session, config.worker))
        else:
            findings += await _guarded("discord", lambda: check_discord(session, config, environ))
            findings += await _guarded("worker", lambda: check_worker(session, config, environ))
            findings += await _guarded("llm", lambda: check_llm(session, config.llm, environ))
            findings.append(await asyncio.to_thread(check_disk, config.storage, probes.free))
        if worker_host or config.backend.mode == "embedded":
            # This host renders: torch is imported for this check only.
            findings += await asyncio.to_thread(check_gpu, config.worker, probes.gpus)
    return Report(str(path), tuple(findings)).masked(secrets(config, environ))


def run_doctor(path: Path, environ: Mapping[str, str], out: TextIO, *, as_json: bool = False,
               worker_host: bool = False) -> int:  # fmt: skip
    """The command: print the report (text or JSON); 1 when a check failed."""
    report = asyncio.run(diagnose(path, environ, worker_host=worker_host))
    out.write(report.json() if as_json else report.text())
    out.flush()
    return report.exit_code
