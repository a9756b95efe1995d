"""Chaos: jobs from many users through the real `egaku bot` and a real worker, while both die and Discord storms.

The bot and the worker (the tiny preset, CPU) are real processes; Discord and the LLM are the
project's fakes, served here. Each user keeps `in_flight` requests open (a mention: "draw ...")
until `jobs` are asked. Meanwhile, at fixed shares of the answers, the worker is SIGKILLed and
started again, the bot is SIGKILLed and started again on the same database, and Discord answers
message posts with a storm of 429s (half with `Via`, which discord.py retries itself; all with
`retry_after`) and one of 5xx. Counted from what the fake Discord holds at the end:

- lost: a request with no answer at all (neither its picture nor a clear failure);
- duplicated: a request answered with two pictures;
- wasted renders: a job the worker drew more than once (its log names each job it finished);
- the time from each request to its answer (p50, p99).

Requests are sent only while the bot is connected, and none in the second before a bot kill:
Discord does not deliver an event again to a new session, so a message the gateway hands a
process in its last milliseconds, before its journal's write, is outside what a journal can keep.

    python -m benchmarks.chaos [--jobs 1000] [--users 50] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from benchmarks.bot_overhead import pct
from tests.fakes.discord import BOT_ID, CHANNEL_ID, OTHER_CHANNEL_ID, FakeDiscord, Fault
from tests.fakes.egaku_processes import Egaku, Settings, job_states
from tests.fakes.openai import Call, FakeOpenAI, Say, Script

PROMPT = "a red fox in fresh snow, watercolour"
QUIET_BEFORE_BOT_KILL_S = 1.0


@dataclass(frozen=True)
class Plan:
    """How much traffic, and which faults at which share of the answers."""

    jobs: int = 1000
    users: int = 50
    in_flight: int = 2  # requests each user keeps open (their cap is 1 drawing + 2 waiting)
    guild_users: int = 10  # the first ones talk in the server's two channels, the others in DMs
    worker_kills: tuple[float, ...] = (0.15, 0.45, 0.75)
    bot_kills: tuple[float, ...] = (0.3, 0.6, 0.9)
    storms_429: tuple[float, ...] = (0.4,)
    storms_5xx: tuple[float, ...] = (0.7,)
    storm_size: int = 40  # refused message posts per storm
    steps: int = 2
    timeout_s: float = 3600.0


@dataclass
class Request:
    """One user's message and when it was sent."""

    user: int
    message_id: int
    sent_at: float


@dataclass
class Figures:
    """What one run counted."""

    jobs: int
    users: int
    pictures: int = 0  # requests answered with their picture
    failures: int = 0  # requests answered with a clear failure and no picture
    lost: int = 0
    duplicated: int = 0
    renders: int = 0
    wasted_renders: int = 0
    p50_s: float = 0.0
    p99_s: float = 0.0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # this process, the bot's and the worker's, together
    faults: Counter[str] = field(default_factory=Counter)
    failure_texts: Counter[str] = field(default_factory=Counter)  # what the clear failures said
    lost_ids: list[int] = field(default_factory=list)
    duplicated_ids: list[int] = field(default_factory=list)


def draw(body: dict[str, Any]) -> Script:
    """An instant model: every message is a picture, with the reply in the tool call."""
    if body["messages"][-1]["role"] == "tool":
        return Say("Here it is!")
    return Call("generate_image", {"prompt": PROMPT, "reply": "Here it is!"})


class Chaos:
    """One run: the fakes here, the bot and the worker as processes, the users and the faults as tasks."""

    def __init__(self, plan: Plan, folder: Path, cache: Path) -> None:
        self.plan = plan
        self.folder = folder
        self.cache = cache
        self.discord = FakeDiscord()
        self.llm = FakeOpenAI(responder=draw)
        self.requests: dict[int, Request] = {}
        self.answers: dict[int, list[int]] = {}  # request message id -> the bot's messages replying to it
        self.bot_up = asyncio.Event()
        self.quiet = asyncio.Event()  # set: users may send
        self.quiet.set()
        self.figures = Figures(plan.jobs, plan.users)
        self._scanned: set[int] = set()  # the fake's messages already looked at
        self._asked = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> Figures:
        """Drive the users and the faults until every request is answered (or the run times out)."""
        await self.discord.start()
        await self.llm.start()
        settings = Settings(steps=self.plan.steps, max_batch=4, per_user_queued=2)
        self.egaku = Egaku(self.folder, self.discord.api_base, self.discord.gateway_url, self.llm.base_url,
                           self.cache, settings)  # fmt: skip
        started, cpu = time.perf_counter(), cpu_seconds()
        try:
            await self.egaku.start_worker()
            await self._start_bot()
            users = [asyncio.create_task(self._user(n)) for n in range(self.plan.users)]
            await asyncio.wait_for(self._watch(users), self.plan.timeout_s)
            await asyncio.wait_for(self._settled(), 300)
        finally:
            self.figures.elapsed_s = time.perf_counter() - started
            await self.egaku.stop()
            await self.llm.stop()
            await self.discord.stop()
            self.figures.cpu_s = cpu_seconds() - cpu  # the stopped processes are reaped: their time is in
        return self._count()

    async def _start_bot(self) -> None:
        identified = self.discord.identify_count
        await self.egaku.start_bot()
        await self.discord.wait_for_request(lambda r: r.path.endswith("/users/@me"), 120)  # logging in
        for _ in range(2400):  # then a fresh IDENTIFY (a new process has no session to resume)
            if self.discord.identify_count > identified:
                break
            await asyncio.sleep(0.05)
        await self.discord.wait_ready(120)
        self.bot_up.set()

    async def _user(self, n: int) -> None:
        """Keep `in_flight` requests open until the plan's jobs are all asked."""
        user = 10_000 + n
        guild = n < self.plan.guild_users
        channel = (CHANNEL_ID, OTHER_CHANNEL_ID)[n % 2] if guild else 20_000 + n
        open_ones: list[int] = []
        # A user stops once every job is asked, even with requests open: one that is never answered
        # is counted as lost at the end, and must not keep the run going.
        while self._asked < self.plan.jobs:
            open_ones = [m for m in open_ones if not self.answers.get(m)]
            if len(open_ones) >= self.plan.in_flight:
                await asyncio.sleep(0.05)
                continue
            self._asked += 1
            number = self._asked
            await self.quiet.wait()
            await self.bot_up.wait()
            sent = await self.discord.user_message(
                f"<@{BOT_ID}> draw a fox, please ({number})", author_id=user, author_name=f"user{n}",
                channel_id=channel, dm=not guild,
            )  # fmt: skip
            message_id = int(sent["id"])
            self.requests[message_id] = Request(user, message_id, time.perf_counter())
            open_ones.append(message_id)

    async def _watch(self, users: list[asyncio.Task[None]]) -> None:
        """Collect the answers; fire each fault when its share of the requests is answered.

        It ends when every request is answered, or, once all are asked, when the bot's journal
        holds nothing unanswered and no answer came for a minute (what is missing then is lost).
        """
        faults = sorted(
            [(at, "worker kill") for at in self.plan.worker_kills]
            + [(at, "bot kill") for at in self.plan.bot_kills]
            + [(at, "429 storm") for at in self.plan.storms_429]
            + [(at, "5xx storm") for at in self.plan.storms_5xx]
        )
        last, last_at = 0, time.monotonic()
        while True:
            self._scan()
            answered = sum(1 for replies in self.answers.values() if replies)
            while faults and answered >= faults[0][0] * self.plan.jobs:
                _, kind = faults.pop(0)
                await self._fault(kind)
            if answered != last:
                last, last_at = answered, time.monotonic()
            if all(task.done() for task in users) and not faults:
                if answered >= len(self.requests):
                    return
                if time.monotonic() - last_at > 60 and await self._journal_settled():
                    return
            await asyncio.sleep(0.1)

    async def _fault(self, kind: str) -> None:
        self.figures.faults[kind] += 1
        if kind == "worker kill":
            await self.egaku.kill("worker")
            restart = asyncio.create_task(self.egaku.start_worker())  # as a supervisor would; the bot waits for it
            self._tasks.add(restart)
            restart.add_done_callback(self._tasks.discard)
        elif kind == "bot kill":
            self.quiet.clear()
            await asyncio.sleep(QUIET_BEFORE_BOT_KILL_S)
            self.bot_up.clear()
            await self.egaku.kill("bot")
            self.quiet.set()
            await self._start_bot()
        else:
            self.discord.faults.extend(storm(kind, self.plan.storm_size // 2))

    def _scan(self) -> None:
        """Note the bot's new messages that reply to a request.

        Every message is looked at, by id: the fake forgets deleted ones (the status messages), so
        a position in its list does not mark what was seen.
        """
        for message_id, message in list(self.discord.messages.items()):
            if message_id in self._scanned:
                continue
            self._scanned.add(message_id)
            reference = (message.get("message_reference") or {}).get("message_id")
            if reference is not None and int(reference) in self.requests:
                self.answers.setdefault(int(reference), []).append(message_id)

    async def _settled(self) -> None:
        """Until the journal holds no unanswered job (the last answers are marked)."""
        for _ in range(1500):
            if await self._journal_settled():
                return
            await asyncio.sleep(0.2)

    async def _journal_settled(self) -> bool:
        states = set((await job_states(self.egaku.journal)).values())
        return not {"queued", "sent", "running", "done", "failed"} & states

    def _count(self) -> Figures:
        self._scan()
        f = self.figures
        waits = []
        for message_id, request in self.requests.items():
            replies = [self.discord.messages.get(r) for r in self.answers.get(message_id, [])]
            replies = [r for r in replies if r is not None]
            with_picture = [r for r in replies if r["attachments"]]
            if not replies:
                f.lost += 1
                f.lost_ids.append(message_id)
                continue
            f.pictures += bool(with_picture)
            f.failures += not with_picture
            if not with_picture:
                f.failure_texts[replies[0]["content"][:120]] += 1
            if len(with_picture) > 1:
                f.duplicated += 1
                f.duplicated_ids.append(message_id)
            first = min(self.discord.created_at[int(r["id"])] for r in replies)
            waits.append(first - request.sent_at)
        drawn = Counter(re.findall(r"job ([0-9a-f]{16}) drawn", self.egaku.log("worker").read_text(errors="replace")))
        f.renders = sum(drawn.values())
        f.wasted_renders = sum(count - 1 for count in drawn.values())
        waits.sort()
        if waits:
            f.p50_s, f.p99_s = pct(waits, 0.5), pct(waits, 0.99)
        return f


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (every bot and worker process that ended)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def storm(kind: str, each: int) -> list[Fault]:
    """Message posts refused: 429s with `retry_after` (half with `Via`, which discord.py retries itself), or 5xx."""
    limited = {"message": "You are being rate limited.", "retry_after": 0.3, "global": False}
    if kind == "429 storm":
        return [
            Fault("POST", "/channels/", 429, limited, each, {"Retry-After": "0.3", "Via": "1.1 google"}, "/messages"),
            Fault("POST", "/channels/", 429, limited, each, {"Retry-After": "0.3"}, "/messages"),
        ]
    return [
        Fault("POST", "/channels/", 502, {"message": "Bad Gateway", "code": 0}, each, {}, "/messages"),
        Fault("POST", "/channels/", 500, {"message": "Internal Server Error", "code": 0}, each, {}, "/messages"),
    ]


async def run(plan: Plan, cache: Path, folder: Path | None = None) -> Figures:
    """One chaos run in `folder` (a fresh temporary one by default), with the tiny model built in `cache`."""
    if folder is not None:
        return await Chaos(plan, folder, cache).run()
    with tempfile.TemporaryDirectory(prefix="egaku-chaos-") as tmp:
        return await Chaos(plan, Path(tmp), cache).run()


def markdown(figures: Figures, plan: Plan, command: str) -> str:
    """The benchmark's section of docs/benchmarks.md."""
    faults = ", ".join(f"{count} × {kind}" for kind, count in sorted(figures.faults.items()))
    f = figures
    row = (
        f"| {f.jobs} | {f.pictures} | {f.failures} | {f.lost} | {f.duplicated} | {f.renders} | {f.wasted_renders} "
        f"| {f.p50_s:.1f} | {f.p99_s:.1f} | {f.elapsed_s:.0f} | {f.cpu_s:.0f} |"
    )
    said = "".join(f"\n- {count} × “{text}”" for text, count in f.failure_texts.most_common())
    failures = f"\n\nThe clear failures said:{said}" if said else ""
    return f"""## Chaos: nothing lost (issue 23)

The real `egaku bot` and `egaku worker` processes (tiny preset, {plan.steps} steps, CPU) through the fake
Discord and the fake LLM: {plan.jobs} requests from {plan.users} users ({plan.guild_users} in the server's
two channels, the rest in DMs; each keeps {plan.in_flight} open). Faults, at shares of the answers:
{faults}; each storm refuses {plan.storm_size} message posts (429s with `retry_after`, half with `Via`;
502s and 500s). The worker comes back at once, as a supervisor would start it; so does the bot, on
the same database. Requests are sent only while the bot is connected, and none in the second
before a bot kill (an event delivered to a process in its last milliseconds, before its journal's
write, is not delivered again to a new session).

- Device: {device()}
- Date: {dt.date.today().isoformat()}
- Command: `{command}`

| requests | pictures | clear failures | lost | duplicated | renders | wasted renders | p50 s | p99 s | run s | CPU s |
|---|---|---|---|---|---|---|---|---|---|---|
{row}{failures}

Wasted renders are jobs the worker finished twice: a job whose answer was cut by a worker kill
after it was drawn (the worker's kept results die with it), drawn again when the bot sends it
again under the same id. Renders cut short by a kill are not counted. A bot kill wastes none:
the restarted bot re-attaches to its jobs by id, or gets their kept results."""


def main() -> None:
    loopback_only("benchmarks.chaos")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=Plan.jobs)
    parser.add_argument("--users", type=int, default=Plan.users)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "egaku-bench")
    parser.add_argument("--write", type=Path, help="update this markdown file (docs/benchmarks.md)")
    args = parser.parse_args()
    from worker.pipelines import tiny_dir  # builds the tiny preset once (torch, in this process only)

    tiny_dir(args.cache, "sdxl")
    plan = Plan(jobs=args.jobs, users=args.users)
    figures = asyncio.run(run(plan, args.cache))
    print(figures)
    if args.write:
        command = f"python -m benchmarks.chaos --jobs {args.jobs} --users {args.users} --write {args.write}"
        write_section(args.write, "chaos", markdown(figures, plan, command))


if __name__ == "__main__":
    main()
