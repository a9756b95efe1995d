"""Interaction acknowledgement under load: 200 /imagine commands at once.

The real `egaku bot` process runs against the fake Discord (and an instant LLM and
worker) in this process. Each command's time runs from its INTERACTION_CREATE
being sent to its defer callback arriving: that is what Discord's 3-second rule
measures.

    python -m benchmarks.ack_latency [--commands 200] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
from pathlib import Path

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from benchmarks.bot_overhead import Fakes, bot_process, pct


async def run(commands: int) -> dict[str, float]:
    fakes = Fakes()
    fakes.start()
    try:
        async with bot_process(fakes):
            options = [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}]
            await fakes.call(fakes.discord.slash_command("imagine", options, user_id=1))  # warm-up
            await asyncio.sleep(1.0)
            sent: dict[str, float] = {}

            async def fire(i: int) -> None:
                payload = await fakes.discord.slash_command("imagine", options, user_id=10_000 + i)
                sent[payload["id"]] = time.perf_counter()

            async def burst() -> None:
                await asyncio.gather(*(fire(i) for i in range(commands)))

            await fakes.call(burst())
            started = time.perf_counter()
            while True:
                acks = {r.path.split("/")[4]: r.at for r in fakes.discord.requests if r.path.endswith("/callback")}
                if all(i in acks for i in sent) or time.perf_counter() - started > 60:
                    break
                await asyncio.sleep(0.05)
    finally:
        fakes.stop()
    latencies = [acks[i] - t for i, t in sent.items() if i in acks]
    return {
        "commands": commands,
        "acked": len(latencies),
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "mean_ms": statistics.mean(latencies) * 1000,
    }


def main() -> None:
    loopback_only("benchmarks.ack_latency")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    r = asyncio.run(run(args.commands))
    print(r)
    if args.write:
        write_section(
            args.write,
            "ack_latency",
            f"""## Interaction acknowledgement under load (issue: the Discord product surface)

{args.commands} `/imagine` commands dispatched at once to the real `egaku bot` process; time from each
INTERACTION_CREATE to its defer callback at the fake Discord (goal: p99 ≤ 100 ms; Discord's limit is 3 s).

- Device: {device()}
- Date: {dt.date.today().isoformat()}
- Command: `python -m benchmarks.ack_latency --commands {args.commands} --write {args.write}`

| commands | acknowledged | p50 ms | p99 ms | max ms |
|---|---|---|---|---|
| {r["commands"]} | {r["acked"]} | {r["p50_ms"]:.1f} | {r["p99_ms"]:.1f} | {r["max_ms"]:.1f} |
""",
        )


if __name__ == "__main__":
    main()
