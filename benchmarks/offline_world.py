"""The offline first run, measured end to end: held-back lines typed into the real `egaku chat`.

`egaku chat --config config.example.toml` (the bundled SmolLM2 with the world adapter, the `world`
drawing preset, an embedded worker) runs as a newcomer runs it, in a fresh storage folder, its
stdin a terminal so that its `you> ` prompt marks the end of each turn. Every posted picture is
read back by the world's analytic judge (training/world/judge.py).

1. Requests: 50 held-back requests per language (English, Japanese, Chinese). The whole scene is
   right when the background and every object's colour, shape, size and position are read right.
   The agent's part is reported on its own: the printed prompt must be exactly the canonical caption.
2. Edits: 20 per language, each after the picture it changes was drawn from its caption. Right when
   the judge reads the changed attribute right in the new picture and reads the other objects and
   the background as it read them before; and the pixel change outside the changed object's grid
   cells (before and after; for a new background, outside what the judge read as background) against inside.
   References by ordinal are typed at the start of a fresh chat, where "the second one" is #2; a
   terminal cannot reply to a message, so references by reply are typed without one.
3. Chat: 30 lines: no picture, a reply in the user's language, under 300 characters, no sentence twice.
4. Out of the world: 10 lines: no picture, and the polite explanation.
5. Short requests: 10 per language, a newcomer's first words ("draw a red circle"): held-back scenes
   with every default, only their colours and shapes said.
6. CPU seconds per turn after loading: the chat process (the agent and its LLM) and the worker.

    python -m benchmarks.offline_world [--write docs/benchmarks.md] [--per-language 50 20 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pty
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks._markdown import device, write_section
from benchmarks._netns import loopback_only
from training.agent.conversations import HELD_SEED, LANGUAGES, Example, Writer, held_back
from training.agent.lexicon import TONGUES
from training.world.judge import ATTRIBUTES, Verdict, judge
from training.world.scenes import GRID, PALETTE, SIZE, Scene, Shape
from worker.world.reading import labels, read

ROOT = Path(__file__).resolve().parent.parent
PROMPT = b"you> "
TICKS = os.sysconf("SC_CLK_TCK")
# What the polite explanation must say, per language: only shapes, colours and positions; a real model.
EXPLANATION = {
    "en": ("only shapes, colours and positions", "real model"),
    "ja": ("形と色と位置", "本物のモデル"),
    "zh": ("形状、颜色和位置", "真正的模型"),
}
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Turn:
    """What one line typed into the chat brought back."""

    said: str
    reply: str = ""
    pictures: list[tuple[np.ndarray, str]] = field(default_factory=list)  # (pixels, the prompt printed)
    agent_cpu: float = 0.0
    worker_cpu: float = 0.0
    wall: float = 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    """A process's child processes."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class Chat:
    """One `egaku chat` on the example config in a fresh storage folder, driven line by line."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self._master = -1
        self._buffer = b""

    def start(self) -> None:
        """Start the chat and wait for its first prompt (the model and the worker are then loaded)."""
        text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
        text = text.replace("~/.local/share/egaku", str(self.folder / "data"))
        text = text.replace("~/.cache/egaku", str(self.folder / "cache"))
        (self.folder / "egaku.toml").write_text(text, encoding="utf-8")
        master, slave = pty.openpty()
        attributes = termios.tcgetattr(slave)
        attributes[3] &= ~termios.ECHO  # the typed line is not echoed back into the pty
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egaku", "chat", "--config", str(self.folder / "egaku.toml")],
            stdin=slave, stdout=subprocess.PIPE, stderr=(self.folder / "chat.log").open("wb"), cwd=ROOT,
        )  # fmt: skip
        os.close(slave)
        self._master = master
        self._until_prompt(timeout_s=600)
        self._warm()

    def _warm(self) -> None:
        """One turn that is not measured: the first model call pays one-time costs."""
        self.say("hello")

    def _until_prompt(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        os.set_blocking(self.proc.stdout.fileno(), False)
        while not self._buffer.endswith(PROMPT):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                log = (self.folder / "chat.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"egaku chat stopped answering: {self._buffer[-500:]!r}\n{log}")
            chunk = self.proc.stdout.read(65536)
            if chunk:
                self._buffer += chunk
            else:
                time.sleep(0.02)
        out, self._buffer = self._buffer[: -len(PROMPT)], b""
        return out.decode()

    def say(self, line: str) -> Turn:
        """Type a line; the turn's reply, pictures and costs."""
        assert self.proc is not None
        worker = children(self.proc.pid)
        agent_before, worker_before = cpu_seconds(self.proc.pid), sum(map(cpu_seconds, worker))
        started = time.monotonic()
        os.write(self._master, line.encode() + b"\n")
        out = self._until_prompt(timeout_s=300)
        turn = Turn(said=line, wall=time.monotonic() - started)
        turn.agent_cpu = cpu_seconds(self.proc.pid) - agent_before
        turn.worker_cpu = sum(map(cpu_seconds, worker)) - worker_before
        lines = out.splitlines()
        turn.reply = " ".join(x.removeprefix("egaku> ") for x in lines if x.startswith("egaku> "))
        for n, x in enumerate(lines):
            if x.strip().startswith("image: "):
                path = x.strip().removeprefix("image: ")
                prompt = lines[n + 1].strip().removeprefix("prompt: ") if n + 1 < len(lines) else ""
                turn.pictures.append((np.asarray(Image.open(path).convert("RGB")), prompt))
        return turn

    def last_id(self) -> str:
        """The id of the newest picture in this chat's history."""
        with sqlite3.connect(self.folder / "data" / "history" / "history.sqlite") as db:
            return str(db.execute("SELECT id FROM generations ORDER BY created DESC, rowid DESC LIMIT 1").fetchone()[0])

    def close(self) -> None:
        """End of input: the chat exits and stops its worker."""
        os.close(self._master)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(timeout=30)


# -- judging -------------------------------------------------------------------------------------
def whole(picture: np.ndarray, scene: Scene) -> tuple[bool, bool, list[Verdict]]:
    """Whether the whole scene is right, whether the background is, and each object's verdict."""
    background, verdicts = judge(picture, scene)
    return background and all(all(v.__dict__.values()) for v in verdicts), background, verdicts


def cells_mask(shapes: list[Shape]) -> np.ndarray:
    """The pixels of the grid cells these objects stand in."""
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    step = SIZE / GRID
    for s in shapes:
        row, col = s.cell
        mask[round(row * step) : round((row + 1) * step), round(col * step) : round((col + 1) * step)] = True
    return mask


@dataclass(frozen=True)
class EditVerdict:
    """One edit, judged."""

    language: str
    kind: str
    caption_right: bool
    changed_right: bool
    rest_unchanged: bool
    ratio: float | None

    @property
    def right(self) -> bool:
        """The changed attribute read right and the rest unchanged."""
        return self.changed_right and self.rest_unchanged


def judge_edit(example: Example, before: np.ndarray, after: np.ndarray, prompt: str) -> EditVerdict:
    """Read the picture before and after an edit against the scenes before and after."""
    parent, child = example.parent, example.scene
    assert parent is not None and child is not None
    kind = example.kind.split(":")[1]
    old = {(s.colour, s.shape, s.size, s.cell): s for s in parent.shapes}
    new = {(s.colour, s.shape, s.size, s.cell): s for s in child.shapes}
    kept = [s for key, s in new.items() if key in old]
    changed_before = [s for key, s in old.items() if key not in new]
    changed_after = [s for key, s in new.items() if key not in old]
    _, bg_after, verdicts_after = whole(after, child)
    _, bg_before, verdicts_before = whole(before, parent)
    by_after = dict(zip(child.shapes, verdicts_after, strict=True))
    by_before = dict(zip(parent.shapes, verdicts_before, strict=True))
    attribute = {"recolour": "colour", "reshape": "shape", "move": "position", "resize": "size"}.get(kind)
    if kind == "background":
        changed_right = bg_after
    elif kind == "remove":
        gone = changed_before[0]
        changed_right = not any(b.colour == gone.colour and b.area >= 40 for b in read(after).blobs)
    elif kind == "add":
        changed_right = all(by_after[changed_after[0]].__dict__.values())
    else:
        assert attribute is not None
        changed_right = bool(getattr(by_after[changed_after[0]], attribute))
    rest = all(by_after[s] == by_before[old[(s.colour, s.shape, s.size, s.cell)]] for s in kept)
    if kind != "background":
        rest = rest and bg_after == bg_before
    inside = cells_mask([*changed_before, *changed_after])
    if kind == "background":  # inside: what the judge read as background before
        inside = labels(before) == list(PALETTE).index(read(before).background)
    diff = np.abs(before.astype(np.float64) - after.astype(np.float64)).mean(axis=2)
    ratio = float(diff[~inside].mean() / diff[inside].mean()) if diff[inside].mean() > 0 else None
    return EditVerdict(example.language, kind, prompt == child.caption(), changed_right, rest, ratio)


def in_language(text: str, language: str) -> bool:
    """Whether a reply is written in the language: kana for Japanese, Han without kana for Chinese."""
    if language == "ja":
        return bool(_KANA.search(text))
    if language == "zh":
        return bool(_HAN.search(text)) and not _KANA.search(text)
    return bool(re.search(r"[A-Za-z]{3}", text)) and not _HAN.search(text) and not _KANA.search(text)


def sentences(text: str) -> list[str]:
    """The sentences of a reply, in any of the three languages."""
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s*", text) if s.strip()]


def chat_right(turn: Turn, language: str) -> bool:
    """No picture, the user's language, under 300 characters, no sentence said twice."""
    said = sentences(turn.reply)
    return (
        not turn.pictures
        and bool(turn.reply)
        and in_language(turn.reply, language)
        and len(turn.reply) < 300
        and len(said) == len(set(said))
    )


def outside_right(turn: Turn, language: str) -> bool:
    """No picture, and the polite explanation in the user's language."""
    return not turn.pictures and chat_right(turn, language) and all(m in turn.reply for m in EXPLANATION[language])


# -- the runs --------------------------------------------------------------------------------------
@dataclass
class Results:
    """Everything measured."""

    requests: list[tuple[Example, Turn]] = field(default_factory=list)
    edits: list[tuple[Example, Turn, EditVerdict | None]] = field(default_factory=list)
    chat: list[tuple[Example, Turn]] = field(default_factory=list)
    outside: list[tuple[Example, Turn]] = field(default_factory=list)
    short: list[tuple[Example, Turn]] = field(default_factory=list)
    bare: list[tuple[Example, Turn]] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)

    def turns(self) -> list[Turn]:
        """Every measured turn."""
        return [
            *(t for _, t in self.requests), *(t for _, t, _ in self.edits),
            *(t for _, t in [*self.chat, *self.outside, *self.short, *self.bare]),
        ]  # fmt: skip


def run_edits(chat: Chat, examples: list[Example], results: Results) -> None:
    """Draw each edit's picture from its caption, then type the edit; ordinal references first."""
    rng = random.Random(HELD_SEED)
    ordinal = [e for e in examples if e.how == "ordinal"][:3]
    rest = [e for e in examples if e not in ordinal]
    drawn: list[tuple[Example, Turn]] = [(e, chat.say(f"draw {e.parent.caption()}")) for e in ordinal]  # type: ignore[union-attr]
    for number, (example, parent_turn) in enumerate(drawn, start=1):
        writer = Writer(TONGUES[example.language], rng, held=True)
        edit(chat, example, parent_turn, writer.refer(example.said, "ordinal", "", number), results)
    for example in rest:
        parent_turn = chat.say(f"draw {example.parent.caption()}")  # type: ignore[union-attr]
        writer = Writer(TONGUES[example.language], rng, held=True)
        if example.how == "id":
            text = writer.refer(example.said, "id", chat.last_id(), 0)
        elif example.how == "reply":
            text = example.said  # a terminal cannot reply to a message: the last picture, named as such
        else:
            text = example.text
        edit(chat, example, parent_turn, text, results)


def edit(chat: Chat, example: Example, parent_turn: Turn, text: str, results: Results) -> None:
    """Type one edit and judge it against the picture it changed."""
    turn = chat.say(text)
    verdict = None
    if parent_turn.pictures and turn.pictures:
        verdict = judge_edit(example, parent_turn.pictures[0][0], turn.pictures[0][0], turn.pictures[0][1])
    results.edits.append((example, turn, verdict))


def measure(requests: int, edits: int, chat_lines: int, workdir: Path) -> Results:
    """Run every set through fresh chats."""
    sets = held_back(requests=requests, edits=edits, chat=chat_lines)
    results = Results()

    def started(name: str) -> Chat:
        chat = Chat(workdir / name)
        (workdir / name).mkdir(parents=True)
        tick = time.monotonic()
        chat.start()
        results.load_s.append(time.monotonic() - tick)
        return chat

    main = started("requests")
    try:
        for n, example in enumerate(sets.requests):
            results.requests.append((example, main.say(example.text)))
            print(f"request {n + 1}/{len(sets.requests)}", file=sys.stderr, flush=True)
        results.chat = [(e, main.say(e.text)) for e in sets.chat]
        results.outside = [(e, main.say(e.text)) for e in sets.outside]
        results.short = [(e, main.say(e.text)) for e in sets.short]
        results.bare = [(e, main.say(e.text)) for e in sets.bare]  # after every picture above
    finally:
        main.close()
    for language in LANGUAGES:
        if not any(e.language == language for e in sets.edits):
            continue  # `--per-language R 0 C`: no edits, and no chat started for them
        chat = started(f"edits-{language}")
        try:
            run_edits(chat, [e for e in sets.edits if e.language == language], results)
            print(f"edits in {language} done", file=sys.stderr, flush=True)
        finally:
            chat.close()
    return results


# -- the report ------------------------------------------------------------------------------------
def read_request(example: Example, turn: Turn) -> tuple[bool, bool, list[Verdict]]:
    """The judge's reading of a request's picture; no picture is every attribute wrong."""
    assert example.scene is not None
    if not turn.pictures:
        return False, False, [Verdict(False, False, False, False) for _ in example.scene.shapes]
    return whole(turn.pictures[0][0], example.scene)


def asked(pairs: list[tuple[Example, Turn]]) -> tuple[str, str]:
    """Requests' shares: the caption exactly the scene's, and the whole scene read right."""
    captions = [bool(t.pictures and e.scene and t.pictures[0][1] == e.scene.caption()) for e, t in pairs]
    return share(captions), share([read_request(e, t)[0] for e, t in pairs])


def share(values: list[bool]) -> str:
    """'93.3% (28/30)'."""
    return f"{100 * sum(values) / len(values):.1f}% ({sum(values)}/{len(values)})" if values else "n/a"


def report(results: Results, command: str, seconds: float, load: float) -> str:
    """The markdown section."""
    by_language: dict[str, list[tuple[Example, Turn]]] = defaultdict(list)
    for example, turn in results.requests:
        by_language[example.language].append((example, turn))
    rows = []
    for language in [*LANGUAGES, "all"]:
        pairs = results.requests if language == "all" else by_language[language]
        verdicts = [read_request(e, t) for e, t in pairs]
        objects = [v for w in verdicts for v in w[2]]
        cells = [
            share([bool(e.scene and t.pictures and t.pictures[0][1] == e.scene.caption()) for e, t in pairs]),
            share([w[0] for w in verdicts]),
            *(share([getattr(v, a) for v in objects]) for a in ATTRIBUTES),
            share([w[1] for w in verdicts]),
        ]
        rows.append(f"| {language} | {len(pairs)} | " + " | ".join(cells) + " |")
    edit_rows = []
    for language in [*LANGUAGES, "all"]:
        items = [(e, t, v) for e, t, v in results.edits if language in ("all", e.language)]
        ratios = [v.ratio for _, _, v in items if v is not None and v.ratio is not None]
        edit_rows.append(
            f"| {language} | {len(items)} | "
            + " | ".join(
                [
                    share([bool(v and v.caption_right) for _, _, v in items]),
                    share([bool(v and v.right) for _, _, v in items]),
                    share([bool(v and v.changed_right) for _, _, v in items]),
                    share([bool(v and v.rest_unchanged) for _, _, v in items]),
                    f"{statistics.median(ratios):.3f}" if ratios else "n/a",
                ]
            )
            + " |"
        )
    kinds: dict[str, list[EditVerdict | None]] = defaultdict(list)
    for example, _, verdict in results.edits:
        kinds[example.kind.split(":")[1]].append(verdict)
    kind_line = ", ".join(
        f"{k} {share([bool(v and v.caption_right) for v in vs])} / {share([bool(v and v.right) for v in vs])}"
        for k, vs in kinds.items()
    )
    header = "| language | edits | caption exactly right (agent) | right | changed attribute right | rest unchanged |"
    edits = f"""{header} median ratio |
|---|---|---|---|---|---|---|
{chr(10).join(edit_rows)}

Per kind (caption / right): {kind_line}."""
    if not results.edits:
        edits = "Not run in this run (`--per-language R 0 C`)."
    turns = results.turns()
    chat = share([chat_right(t, e.language) for e, t in results.chat])
    outside = share([outside_right(t, e.language) for e, t in results.outside])
    short_captions, short_scenes = asked(results.short)
    bare_captions, bare_scenes = asked(results.bare)
    date = dt.date.today().isoformat()
    agent_cpu = statistics.median(t.agent_cpu for t in turns)
    worker_cpu = statistics.median(t.worker_cpu for t in turns)
    body = f"""## The offline first run, end to end (`benchmarks/offline_world.py`)

- Device: {device()}, load average {load:.1f} when it started. Date: {date}. Run time: {seconds / 60:.0f} min.
- Command: `{command}`
- What runs: `egaku chat --config config.example.toml` as a newcomer runs it (the bundled SmolLM2-135M with the
  `world` adapter, the `world` preset, an embedded worker), held-back lines typed into it (another seed than
  training's, sentence frames training never used, the world's held-back scenes), every posted picture read by
  the world judge. The agent's own part is the caption: exactly the canonical caption of the scene asked for.

**Requests** (the whole scene right: background and every object's colour, shape, size and position; per
attribute over all objects asked for; goal >= 90% each):

| language | requests | caption exactly right (agent) | whole scene right | colour | shape | size | position | \
background |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

**Edits** (each after its picture was drawn from its caption; right = the changed attribute read right and the
others and the background read as before; ratio = mean change outside the changed object's grid cells / inside,
goal < 0.2):

{edits}

**Chat** (no picture, the user's language, under 300 characters, no sentence twice; goal 100%): {chat}.
**Out of the world** (no picture, the polite explanation; goal 100%): {outside}.
**Short requests** (a newcomer's first words, "draw a red circle": {len(results.short)} held-back scenes with
every default, nothing but colours and shapes said): caption exactly right {short_captions}, whole scene right
{short_scenes}.
**Bare requests after many pictures** ("draw a red circle", "赤い丸を描いて", "画一个红色的圆": {len(results.bare)}
held-back one-object scenes with every default, typed after all the turns above): caption exactly right
{bare_captions}, whole scene right {bare_scenes}.

**CPU per turn after loading** (median over {len(turns)} turns; goal < 5 s): the chat process (agent and LLM)
{agent_cpu:.2f} s, the worker {worker_cpu:.2f} s;
wall time {statistics.median(t.wall for t in turns):.2f} s. Loading (model and worker, to the first prompt):
{statistics.median(results.load_s):.0f} s.
"""
    return body


def main() -> None:
    """Command line."""
    loopback_only("benchmarks.offline_world")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--per-language", type=int, nargs=3, default=(50, 20, 10), metavar=("REQUESTS", "EDITS", "CHAT")
    )
    parser.add_argument("--write", type=Path, help="markdown file to write the section into (docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="every turn, as JSON")
    args = parser.parse_args()
    sizes = (
        "" if tuple(args.per_language) == (50, 20, 10) else " --per-language " + " ".join(map(str, args.per_language))
    )
    command = "python -m benchmarks.offline_world" + sizes + (f" --write {args.write}" if args.write else "")
    started, load = time.monotonic(), os.getloadavg()[0]  # what else the machine ran shows in every figure
    with tempfile.TemporaryDirectory(prefix="egaku-offline-") as workdir:
        results = measure(*args.per_language, Path(workdir))
    body = report(results, command, time.monotonic() - started, load)
    print(body)
    if args.json:
        # An edit carries its verdict, so that a miss can be told from the painter's (caption right, picture wrong).
        verdicts = {id(t): asdict(v) if v else None for _, t, v in results.edits}
        turns = [
            {"kind": e.kind, "language": e.language, "said": t.said, "reply": t.reply,
             "prompts": [p for _, p in t.pictures], "expected": e.scene.caption() if e.scene else None,
             "agent_cpu": t.agent_cpu, "worker_cpu": t.worker_cpu, "wall": t.wall,
             **({"verdict": verdicts[id(t)]} if id(t) in verdicts else {})}
            for e, t in [
                *results.requests, *((e, t) for e, t, _ in results.edits), *results.chat, *results.outside,
                *results.short, *results.bare,
            ]
        ]  # fmt: skip
        args.json.write_text(json.dumps(turns, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.write:
        write_section(args.write, "offline-world", body)


if __name__ == "__main__":
    main()
