"""/teach on CPU with the tiny pipelines: training time per step, and /teach to the first image using the word.

1. Per step: `Engine.trainer` on the tiny SD1.5 and SDXL pipelines (64x64, 3 pictures), the median of
   chunks of steps after a warm-up chunk; the VAE pass over the pictures is timed on its own.
2. End to end: the real worker over HTTP (the training lane below rendering), `ConceptService.teach` with
   its stored files, then `ImageService.draw` of a prompt with the word, as the bot runs them (no
   Discord, no LLM: those add their own fixed costs, measured in the bot-overhead section).

    python -m benchmarks.teach [--steps 20] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
from PIL import Image

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from tests.fakes.serving import serving_worker
from tools.backends.worker_client import WorkerClient
from tools.checks.uploads import check_image
from tools.service.images import ImageService
from tools.service.requests import Draw, Drawn, Requester
from tools.service.teaching import ConceptService, Taught
from tools.stores.concepts import ConceptStore
from worker.engine import Engine
from worker.protocol import TeachRequest
from worker.settings import ModelPreset, TeachSettings, WorkerSettings

PROMPT = "a photo of <our-mascot> on the moon"


def pictures() -> list[bytes]:
    """Three small PNGs of one subject."""
    out = []
    for colour in ("red", "orange", "yellow"):
        image = Image.new("RGB", (96, 96), "grey")
        image.paste(Image.new("RGB", (48, 48), colour), (24, 24))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def settings_for(cache: Path, family: str, steps: int) -> WorkerSettings:
    preset = ModelPreset(source="tiny", family=family, steps=4, guidance=5.0, width=64, height=64)
    return WorkerSettings(
        cache_dir=str(cache), models={family: preset}, default_model=family, device="cpu", preview_every=0,
        warmup=False, teach=TeachSettings(steps=steps, chunk_steps=4),
    )  # fmt: skip


def per_step(cache: Path, family: str, steps: int) -> tuple[float, float, float]:
    """(ms of the VAE pass and set-up, median and least ms per training step over chunks of 4)."""
    engine = Engine(settings_for(cache, family, steps))
    engine.load()
    plan = engine.plan_teach(TeachRequest(token="<our-mascot>", steps=steps, seed=0), pictures())
    # On a thread, as the worker's render thread runs it: torch on this machine's main thread ran the same
    # steps 2-20x slower while other processes loaded the cores.
    with ThreadPoolExecutor(1) as thread:
        started = time.perf_counter()
        trainer = thread.submit(engine.trainer, plan).result()
        setup = (time.perf_counter() - started) * 1000
        thread.submit(trainer.run, 2).result()  # warm-up
        times = []
        for _ in range(max(1, steps // 4)):
            started = time.perf_counter()
            thread.submit(trainer.run, 4).result()
            times.append((time.perf_counter() - started) * 1000 / 4)
    return setup, statistics.median(times), min(times)


async def end_to_end(cache: Path, steps: int) -> tuple[float, float, float]:
    """Seconds: /teach's training call, storing, and the first drawing that uses the word."""
    settings = settings_for(cache, "sdxl", steps)
    store = await ConceptStore.open(cache / "concepts.sqlite", cache / "concepts")
    try:
        async with serving_worker(Engine(settings), settings) as url, aiohttp.ClientSession() as session:
            client = WorkerClient(session, url)
            concepts = ConceptService(store, client)
            uploads = [check_image(data, f"p{n}.png") for n, data in enumerate(pictures())]
            who = Requester(user_id="1", user_words="/teach our-mascot", guild_id="1")
            started = time.perf_counter()
            taught = await concepts.teach(who, "our-mascot", uploads)
            learned = time.perf_counter()
            assert isinstance(taught, Taught), taught
            drawn = await ImageService(client, words=concepts).draw(who, Draw(prompt=PROMPT, seed=1))
            done = time.perf_counter()
            assert isinstance(drawn, Drawn), drawn
    finally:
        await store.close()
    return learned - started, done - learned, done - started


def main() -> None:
    """Measure, print, and optionally write the section."""
    loopback_only("benchmarks.teach")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        rows = []
        for family in ("sd15", "sdxl"):
            setup, step, least = per_step(cache, family, args.steps)
            rows.append(f"| tiny {family} | {setup:.0f} ms | {step:.0f} ms | {least:.0f} ms |")
            print(rows[-1], flush=True)
        train_s, draw_s, total_s = asyncio.run(end_to_end(cache, args.steps))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    command = f"python -m benchmarks.teach --steps {args.steps} --write docs/benchmarks.md"
    body = f"""## Teaching a word on CPU, tiny pipelines (issue: best-of-N and /teach)

{dt.date.today().isoformat()} · {device()} · `{command}`
(64×64, 3 pictures, one training step = one picture, batch 1; random weights: the figures are the path's cost, not
a real model's). Load average when measured: {load}; the machine was shared with other engineers' test runs, so
the least chunk is the better estimate of the uncontended cost.

| pipeline | set-up (VAE pass over the pictures) | training time per step (median) | least |
|---|---|---|---|
{chr(10).join(rows)}

From `/teach` to the first image that uses the word (tiny SDXL, {args.steps} steps, the real worker over HTTP,
`ConceptService.teach` with its stored files, then `ImageService.draw` with `<our-mascot>` in the prompt):

| training call (queue, decode, {args.steps} steps, result) | storing + first drawing with the word | total |
|---|---|---|
| {train_s:.1f} s | {draw_s:.2f} s | {total_s:.1f} s |

On a real SDXL at 1024² one step is a UNet forward and backward at batch 1; the default 300 steps take
minutes on a GPU (not measured here: no GPU in this session).
"""
    print(body)
    if args.write:
        write_section(args.write, "teach", body)


if __name__ == "__main__":
    main()
