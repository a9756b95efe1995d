"""Best-of-N on CPU with the tiny pipeline and the tiny CLIP scorer: one batch against N requests.

Per round, the same work twice, in alternating order (so load on a shared machine hits both alike):
- one best-of-N request: N candidates rendered as one batch, then scored;
- N single requests, one after another, as N users' ordinary requests would run alone.
Both go through `Engine.render` (planning, the pipeline, PNG encoding, scoring), not HTTP.
The figure is the ratio of the medians: best-of-N time / N singles' time (1/N would be perfect batching).

    python -m benchmarks.best_of [--n 4] [--size 128] [--steps 10] [--rounds 7] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks._markdown import cpu_options, device, on_threads, write_section
from worker.engine import Engine
from worker.protocol import GenerationRequest
from worker.settings import ModelPreset, WorkerSettings

PROMPT = "a red fox in fresh snow under a pale winter sun, watercolour"


def timed(engine: Engine, request: GenerationRequest) -> float:
    """Seconds for one request, start to finish."""
    started = time.perf_counter()
    engine.render(engine.plan(request))
    return time.perf_counter() - started


def run(n: int, size: int, steps: int, rounds: int, cache: Path) -> dict[str, float]:
    """Median seconds of one best-of-N request, of N singles in a row, and of scoring N candidates."""
    preset = ModelPreset(source="tiny", steps=steps, width=size, height=size, guidance=5.0, max_pixels=size * size)
    settings = WorkerSettings(
        cache_dir=str(cache), models={"tiny": preset}, device="cpu", scorer="tiny", max_best_of=8, warmup=False
    )
    engine = Engine(settings)
    engine.load()
    timed(engine, GenerationRequest(prompt=PROMPT, best_of=n))  # warm-up; loads the scorer
    timed(engine, GenerationRequest(prompt=PROMPT))
    best, singles = [], []
    for r in range(rounds):
        order = ("best", "singles") if r % 2 == 0 else ("singles", "best")
        for which in order:
            if which == "best":
                best.append(timed(engine, GenerationRequest(prompt=PROMPT, seed=r * 100, best_of=n)))
            else:
                singles.append(sum(timed(engine, GenerationRequest(prompt=PROMPT, seed=r * 100 + i)) for i in range(n)))
    plan = engine.plan(GenerationRequest(prompt=PROMPT, best_of=n))
    pictures = [Image.new("RGB", (size, size), (i * 40, 80, 120)) for i in range(n)]
    started = time.perf_counter()
    for _ in range(rounds):
        engine._scores(plan, pictures)
    scoring = (time.perf_counter() - started) / rounds
    return {"best": statistics.median(best), "singles": statistics.median(singles), "scoring": scoring}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    cpu_options(parser)
    args = parser.parse_args()
    load = on_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.n, args.size, args.steps, args.rounds, Path(tmp))
    ratio = r["best"] / r["singles"]
    print(
        f"best-of-{args.n}: {r['best']:.3f} s; {args.n} singles: {r['singles']:.3f} s; ratio {ratio:.2f}; "
        f"scoring {r['scoring'] * 1000:.1f} ms"
    )
    if args.write:
        command = (
            f"python -m benchmarks.best_of --n {args.n} --size {args.size} --steps {args.steps} --rounds {args.rounds} "
            f"--threads {args.threads}"
        )
        write_section(
            args.write,
            "best_of",
            f"""## Best-of-N on CPU: one batch of candidates against N single requests (issue 14)

- Device: {device()}
- Date: {dt.date.today().isoformat()}; load average at the start {load:.1f} (a shared machine inflates both sides alike)
- Command: `{command} --write {args.write}`
- Work ({args.threads} torch thread(s)): the tiny SDXL-architecture pipeline, {args.size}x{args.size},
  {args.steps} steps; the tiny random CLIP scorer (`scorer = "tiny"`). Both through `Engine.render`
  (plan, pipeline, PNG encoding; scoring for best-of), medians of {args.rounds} rounds, the orders alternating.

| best-of-{args.n}, one request | {args.n} single requests in a row | ratio | scoring {args.n} candidates |
|---|---|---|---|
| {r["best"]:.3f} s | {r["singles"]:.3f} s | **{ratio:.2f}** | {r["scoring"] * 1000:.1f} ms |

A ratio of 1/{args.n} would mean the batch costs no more than one image; 1.0 would mean no gain from batching.
""",
        )


if __name__ == "__main__":
    main()
