"""The real `egaku bot` and `egaku worker` as processes, for the tests and benchmarks that kill and restart them.

One config file serves both (the worker serves the tiny preset from the tests' cache; the bot
sends it jobs as a remote worker, and talks to the fake Discord and the fake LLM). A process is
killed with SIGKILL, as a crash, an out-of-memory kill or a deploy would do, and started again on
the same config and database. Their logs go to files next to the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import aiosqlite

from tools.backends.embedded import free_port

BOT_SECTIONS = """
[discord]
token_env = "EGAKU_TEST_DISCORD_TOKEN"
api_base = "{api}"
gateway_url = "{gateway}"
sync_commands = false
[llm]
provider = "openai"
base_url = "{llm}"
api_key_env = "EGAKU_TEST_LLM_KEY"
model = "fake-model"
max_retries = 0
[limits]
{limits}
[storage]
path = "{data}/egaku.sqlite"
images_dir = "{data}/images"
history_dir = "{data}/history"
[backend]
mode = "remote"
url = "{backend}"
{retry}"""
WORKER_SECTIONS = """
[worker]
host = "127.0.0.1"
port = {port}
cache_dir = "{cache}"
default_model = "tiny"
device = "cpu"
warmup = false
max_batch = {max_batch}
max_queue = {max_queue}
batch_window_s = 0.01
preview_every = 0
segmenter = "tiny"
captioner = "tiny"
scorer = "tiny"
[worker.models.tiny]
source = "tiny"
steps = {steps}
guidance = 5.0
width = 64
height = 64
max_pixels = 16384
"""


def bot_config(
    *, api: str, gateway: str, llm: str, data: Path, backend: str, limits: dict[str, int],
    retry_for_s: float | None = None,
) -> str:  # fmt: skip
    """The config sections of a real `egaku bot` pointed at the fakes (Discord, LLM) and at a worker's URL.

    Its token and key come from ENV's variables; `limits` are the [limits] keys; `retry_for_s`, how long
    the bot retries an unreachable worker (the config's default when None).
    """
    lines = "\n".join(f"{key} = {value}" for key, value in limits.items())
    retry = "" if retry_for_s is None else f"retry_for_s = {retry_for_s}\n"
    return BOT_SECTIONS.format(api=api, gateway=gateway, llm=llm, data=data, backend=backend, limits=lines,
                               retry=retry)  # fmt: skip


# One torch thread: the tiny model gains nothing from more, and a shared 2-core machine loses much.
ENV = {"EGAKU_TEST_DISCORD_TOKEN": "fake-token", "EGAKU_TEST_LLM_KEY": "sk-fake", "OMP_NUM_THREADS": "1"}


@dataclass
class Settings:
    """What a run varies: the bot's caps and line, and the worker's speed and queue."""

    steps: int = 2
    max_batch: int = 4
    max_queue: int = 64
    per_user_queued: int = 2
    per_guild: int = 8
    total: int = 32
    line: int = 32
    retry_for_s: float = 300.0


@dataclass
class Egaku:
    """One bot and one worker, started, killed and restarted on the same config, database and port."""

    folder: Path
    api_base: str
    gateway_url: str
    llm_url: str
    cache: Path
    settings: Settings = field(default_factory=Settings)
    port: int = field(default_factory=free_port)
    bot: asyncio.subprocess.Process | None = None
    worker: asyncio.subprocess.Process | None = None
    starts: dict[str, int] = field(default_factory=lambda: {"bot": 0, "worker": 0})

    def __post_init__(self) -> None:
        s = self.settings
        self.folder.mkdir(parents=True, exist_ok=True)
        limits = {"per_user_running": 1, "per_user_queued": s.per_user_queued, "per_guild": s.per_guild,
                  "total": s.total, "line": s.line}  # fmt: skip
        bot = bot_config(api=self.api_base, gateway=self.gateway_url, llm=self.llm_url, data=self.folder / "data",
                         backend=self.worker_url, limits=limits, retry_for_s=s.retry_for_s)  # fmt: skip
        worker = WORKER_SECTIONS.format(port=self.port, cache=self.cache, steps=s.steps, max_batch=s.max_batch,
                                        max_queue=s.max_queue)  # fmt: skip
        self.config.write_text(bot + worker, encoding="utf-8")

    @property
    def config(self) -> Path:
        """The config both processes read."""
        return self.folder / "egaku.toml"

    @property
    def journal(self) -> Path:
        """The bot's job journal."""
        return self.folder / "data" / "history" / "journal.sqlite"

    @property
    def worker_url(self) -> str:
        """Where the worker listens (the same after every restart)."""
        return f"http://127.0.0.1:{self.port}"

    async def start_worker(self, timeout_s: float = 300.0) -> None:
        """Start the worker; return once it says it is ready."""
        self.worker = await self._spawn("worker", "--port", str(self.port))
        async with aiohttp.ClientSession() as session:
            for _ in range(int(timeout_s / 0.1)):
                if self.worker.returncode is not None:
                    raise RuntimeError(f"the worker exited with {self.worker.returncode}; see {self.log('worker')}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(self.worker_url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200 and (await r.json())["status"] == "ok":
                            return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"the worker did not become ready in {timeout_s:.0f} s; see {self.log('worker')}")

    async def start_bot(self) -> None:
        """Start the bot (the caller waits for the fake Discord to see it connect)."""
        self.bot = await self._spawn("bot")

    async def kill(self, which: str) -> None:
        """SIGKILL the bot or the worker: no cleanup runs, as in a crash."""
        proc = self.bot if which == "bot" else self.worker
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> None:
        """Stop both (SIGTERM, then SIGKILL after 20 s)."""
        for proc in (self.bot, self.worker):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

    async def completed(self) -> int:
        """How many jobs the running worker has drawn since it started (its metrics)."""
        async with aiohttp.ClientSession() as session, session.get(self.worker_url + "/metrics") as resp:
            text = await resp.text()
        line = next(line for line in text.splitlines() if line.startswith('egaku_jobs_total{outcome="completed"}'))
        return int(float(line.split()[-1]))

    def log(self, which: str) -> Path:
        """The log file of the bot or the worker (every start appends)."""
        return self.folder / f"{which}.log"

    async def _spawn(self, which: str, *args: str) -> asyncio.subprocess.Process:
        self.starts[which] += 1
        with self.log(which).open("ab") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "egaku", which, "--config", str(self.config), *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env={**os.environ, **ENV},
            )  # fmt: skip


async def job_states(journal: Path) -> dict[str, str]:
    """The journal's jobs and their states, read beside the running bot (read-only)."""
    try:
        async with (
            aiosqlite.connect(f"file:{journal}?mode=ro", uri=True) as db,
            db.execute("SELECT job_id, state FROM jobs ORDER BY created") as cursor,
        ):
            return {job_id: state for job_id, state in await cursor.fetchall()}
    except aiosqlite.OperationalError:
        return {}  # the bot has not made it yet
