"""The bot's own overhead: fake Discord event -> image posted, minus LLM and worker time.

The fakes (Discord, an instant OpenAI-compatible LLM, an instant worker) run in
their own thread and event loop, so their CPU cost is not charged to the bot.
The bot runs for real: discord.py, the LangGraph agent with SQLite memory, the
tool, the worker client, the embed and multipart upload.

    python -m benchmarks.bot_overhead [--rounds 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import io
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from PIL import Image

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from tests.fakes.discord import BOT_ID, Captured, FakeDiscord
from tests.fakes.egaku_processes import ENV, bot_config
from tests.fakes.openai import Call, FakeOpenAI, Say, Script
from tests.fakes.serving import serve

T = TypeVar("T")
PNG = io.BytesIO()
Image.new("RGB", (64, 64), (200, 80, 40)).save(PNG, format="PNG")
PNG_B64 = base64.b64encode(PNG.getvalue()).decode()


def draw_then_reply(body: dict[str, Any]) -> Script:
    """An instant LLM: draw on a user message, with the reply written in the tool call (one model call a turn)."""
    if body["messages"][-1]["role"] == "tool":
        return Say("Here it is!")  # not reached while the bot makes one call per drawing turn
    return Call(
        "generate_image", {"prompt": "a red fox in fresh snow, soft morning light, watercolour", "reply": "Here it is!"}
    )


class InstantWorker:
    """A worker answering with a fixed PNG after `latency_s` (0: at once), timing its own handler."""

    def __init__(self) -> None:
        self.busy_s = 0.0
        self.latency_s = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        started = time.perf_counter()
        body = await request.json()
        seed = body.get("seed") or 1
        used = {"model": "tiny", "width": 64, "height": 64, "steps": 2, "guidance": 5.0, "seed": seed}
        data = {"b64_json": PNG_B64, "seed": seed, "parameters": used, "revised_prompt": body["prompt"]}
        response = web.json_response({"created": 0, "data": [data]})
        self.busy_s += time.perf_counter() - started
        return response


class Fakes:
    """The three fakes, served from a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.discord = FakeDiscord()
        self.llm = FakeOpenAI(responder=draw_then_reply)
        self.worker = InstantWorker()
        self._runner: web.AppRunner | None = None

    def call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run a coroutine on the fakes' loop; await the result from the bot's loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def _start(self) -> None:
        await self.discord.start()
        await self.llm.start()
        app = web.Application()
        app.router.add_post("/v1/images/generations", self.worker.handle)
        self._runner, port = await serve(app)
        self.worker.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    def stop(self) -> None:
        async def stop() -> None:
            await self.discord.stop()
            await self.llm.stop()
            if self._runner:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)


async def one_turn(fakes: Fakes, user: int, channel: int) -> float:
    """Seconds from MESSAGE_CREATE to the image post for one conversation turn."""
    path = f"/api/v10/channels/{channel}/messages"

    def image_post(r: Captured) -> bool:  # not the status message a slow GPU gets
        return r.path == path and bool(r.files) and bool((r.json or {}).get("embeds"))

    before = sum(1 for r in fakes.discord.requests if image_post(r))
    started = time.perf_counter()
    await fakes.call(fakes.discord.user_message(f"<@{BOT_ID}> draw a fox", author_id=user, channel_id=channel, dm=True))
    await fakes.call(fakes.discord.wait_for_requests(image_post, before + 1, 120))
    return time.perf_counter() - started


@dataclass
class Measured:
    """One concurrency level's samples."""

    overheads_s: list[float]
    fakes_s_per_turn: float
    turns_per_s: float


async def measure(concurrency: int, rounds: int, fakes: Fakes) -> Measured:
    """Per-turn overhead samples, less the LLM+worker handler time per turn."""
    samples: list[float] = []
    subtracted: list[float] = []
    started = time.perf_counter()
    for round_no in range(rounds):
        llm0, worker0 = fakes.llm.busy_s, fakes.worker.busy_s
        base = 10_000 + round_no * 1000
        times = await asyncio.gather(*(one_turn(fakes, base + i, base + i) for i in range(concurrency)))
        # The fakes' handler time is what a real LLM and worker would replace; share it out.
        per_turn = ((fakes.llm.busy_s - llm0) + (fakes.worker.busy_s - worker0)) / concurrency
        subtracted.append(per_turn)
        samples.extend(t - per_turn for t in times)
    elapsed = time.perf_counter() - started
    return Measured(samples, statistics.mean(subtracted), len(samples) / elapsed)


@dataclass(frozen=True)
class Realistic:
    """A live-server load: model and GPU latencies, and people who pause between messages."""

    conversations: int = 100
    turns: int = 3
    llm_s: float = 0.8  # per model call (a hosted model's answer to a short prompt)
    worker_s: float = 2.5  # per image (SDXL-class on a fast GPU, with its queue)
    think_s: float = 5.0  # mean pause before each message (exponential)


async def measure_realistic(load: Realistic, fakes: Fakes, seed: int = 7) -> Measured:
    """`load.conversations` conversations at once, each sending `load.turns` messages with pauses.

    A drawing turn waits for its model calls (counted at the fake LLM: one since the reply is
    written in the tool call) and one image, so the overhead of a turn is its time less those
    latencies, less the fakes' own handler time.
    """
    rng = random.Random(seed)
    fakes.llm.latency_s, fakes.worker.latency_s = load.llm_s, load.worker_s
    calls0 = len(fakes.llm.requests)
    waited = load.llm_s + load.worker_s
    samples: list[float] = []
    llm0, worker0 = fakes.llm.busy_s, fakes.worker.busy_s

    async def conversation(n: int) -> list[float]:
        times = []
        for _ in range(load.turns):
            await asyncio.sleep(rng.expovariate(1 / load.think_s))
            times.append(await one_turn(fakes, 50_000 + n, 50_000 + n) - waited)
        return times

    started = time.perf_counter()
    try:
        for times in await asyncio.gather(*(conversation(n) for n in range(load.conversations))):
            samples.extend(times)
    finally:
        fakes.llm.latency_s = fakes.worker.latency_s = 0.0
    elapsed = time.perf_counter() - started
    # Any model call beyond one per turn is waiting too, not the bot's own time.
    extra_calls_s = (len(fakes.llm.requests) - calls0 - len(samples)) * load.llm_s / len(samples)
    per_turn = ((fakes.llm.busy_s - llm0) + (fakes.worker.busy_s - worker0)) / len(samples) + extra_calls_s
    return Measured([t - per_turn for t in samples], per_turn, len(samples) / elapsed)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# The fake GPU has room for everyone: measure the bot, not the "busy" answers.
LIMITS = {"per_guild": 1000, "total": 1000}


@contextlib.asynccontextmanager
async def bot_process(fakes: Fakes) -> AsyncIterator[asyncio.subprocess.Process]:
    """The real `egaku bot` in its own process, pointed at the fakes; ready when this yields."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(
            bot_config(api=fakes.discord.api_base, gateway=fakes.discord.gateway_url, llm=fakes.llm.base_url,
                       data=Path(tmp), backend=fakes.worker.url, limits=LIMITS),
            encoding="utf-8",
        )  # fmt: skip
        env = {**os.environ, **ENV}
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "egaku", "bot", "--config", str(config),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await fakes.call(fakes.discord.wait_ready(timeout=120))
            yield bot
        finally:
            bot.terminate()
            await bot.wait()


async def run(rounds: int) -> list[dict[str, Any]]:
    """Start the fakes here and the real `egaku bot` in its own process; drive and time turns."""
    fakes = Fakes()
    fakes.start()
    rows = []
    try:
        async with bot_process(fakes) as bot:
            await one_turn(fakes, 1, 1)  # warm-up: imports, SQLite tables
            load = Realistic()
            runs: list[tuple[str, Callable[[], Awaitable[Measured]]]] = [
                ("1, back to back (instant model and GPU)", lambda: measure(1, 50 * rounds, fakes)),
                ("100 at once (instant model and GPU)", lambda: measure(100, rounds, fakes)),
                (
                    f"{load.conversations} live: model {load.llm_s:g} s/call, GPU {load.worker_s:g} s/image, "
                    f"pauses ~{load.think_s:g} s",
                    lambda: measure_realistic(load, fakes),
                ),
            ]
            for label, run_one in runs:
                cpu0 = cpu_s(bot.pid)
                got = await run_one()
                cpu_ms = (cpu_s(bot.pid) - cpu0) / len(got.overheads_s) * 1000
                rows.append(
                    {
                        "load": label,
                        "turns": len(got.overheads_s),
                        "p50_ms": pct(got.overheads_s, 0.5) * 1000,
                        "p99_ms": pct(got.overheads_s, 0.99) * 1000,
                        "fakes_ms": got.fakes_s_per_turn * 1000,
                        "turns_per_s": got.turns_per_s,
                        "bot_rss_mb": rss_mb(bot.pid),
                        "bot_cpu_ms": cpu_ms,
                    }
                )
    finally:
        fakes.stop()
    return rows


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write(rows: list[dict[str, Any]], path: Path, command: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md."""
    table = "\n".join(
        f"| {r['load']} | {r['turns']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['bot_cpu_ms']:.1f} "
        f"| {r['fakes_ms']:.1f} | {r['turns_per_s']:.1f} | {r['bot_rss_mb']:.0f} |"
        for r in rows
    )
    write_section(
        path,
        "bot_overhead",
        f"""## Bot overhead (issue: the spine)

Fake Discord `MESSAGE_CREATE` → image message posted, minus the time spent inside the
fake LLM and worker (their handlers, and in the live row their simulated latency: one
model call, the reply written in the tool call, and one image per turn). The bot is the real `egaku bot` process (remote
worker, OpenAI-compatible LLM): discord.py, the LangGraph agent with SQLite memory, the
tool, the worker client, embed + multipart upload. The fakes run in the benchmark's own
process. Each conversation is its own DM channel. "Bot CPU" is the bot process's user +
system time per turn, from /proc.

- Device: {device()}
- Date: {dt.date.today().isoformat()}
- Command: `{command}`

| conversations | turns | p50 ms | p99 ms | bot CPU ms/turn | fakes ms/turn (subtracted) | turns/s | bot RSS MB |
|---|---|---|---|---|---|---|---|
{table}""",
    )


def main() -> None:
    loopback_only("benchmarks.bot_overhead")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, help="update this markdown file (docs/benchmarks.md)")
    args = parser.parse_args()
    rows = asyncio.run(run(args.rounds))
    for row in rows:
        print(row)
    if args.write:
        write(rows, args.write, f"python -m benchmarks.bot_overhead --rounds {args.rounds} --write {args.write}")


if __name__ == "__main__":
    main()
