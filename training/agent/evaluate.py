"""The adapter on the held-back conversations: is the answer exactly the one asked for?

    python -m training.agent.evaluate [--adapter agent/adapters/world] [--json out.json] [--per-language 50 20 10]
        [--short 10] [--bare 10]

Each held-back turn goes through the runtime's own pieces (the adapter's chat, the guided greedy
decoding, the answer parser), so this measures the agent's words without the painter: for a
request the caption must be exactly the canonical caption of the scene asked for; for an edit the
reference, the target and the whole new caption; for chat and out-of-world lines the reply.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.smol import SmolRuntime, find_adapter
from agent.worldtalk import Answer, AnswerGuide, adapter_chat, parse_answer
from training.agent.conversations import Example, held_back


@dataclass(frozen=True)
class Graded:
    """One held-back turn, answered and graded."""

    language: str
    kind: str
    text: str
    expected: Answer
    got: Answer | None
    seconds: float

    @property
    def action_right(self) -> bool:
        """The right kind of answer (draw, edit, reply)."""
        return self.got is not None and self.got.action == self.expected.action

    @property
    def caption_right(self) -> bool:
        """Draws and edits: the caption exactly; replies: the reply exactly."""
        if self.got is None or not self.action_right:
            return False
        if self.expected.action == "reply":
            return self.got.text == self.expected.text
        return self.got.caption == self.expected.caption

    @property
    def exact(self) -> bool:
        """Everything the agent passes on: action, caption (or reply), and for edits the reference and target."""
        return self.caption_right and (
            self.expected.action != "edit"
            or (self.got is not None and (self.got.ref, self.got.target) == (self.expected.ref, self.expected.target))
        )


def answer(runtime: SmolRuntime, example: Example) -> tuple[Answer | None, float]:
    """The adapter's answer to one turn, and the seconds it took."""
    assert runtime.world is not None
    guide = AnswerGuide(runtime.world, example.pictures)
    started = time.process_time()
    raw = runtime.guided(adapter_chat(list(example.pictures), example.text), guide)
    return parse_answer(raw), time.process_time() - started


def grade(runtime: SmolRuntime, examples: list[Example]) -> list[Graded]:
    """Answer and grade every example (a progress bar on stderr: a turn takes seconds on a busy CPU)."""
    from tqdm import tqdm

    out = []
    for example in tqdm(examples, desc="held-back turns", unit="turn"):
        got, seconds = answer(runtime, example)
        out.append(Graded(example.language, example.kind, example.text, example.answer, got, seconds))
    return out


def summary(graded: list[Graded]) -> dict[str, dict[str, float]]:
    """Shares right per language and per kind (edits also all together)."""
    groups: dict[str, list[Graded]] = defaultdict(list)
    for g in graded:
        kind = g.kind.split(":")[0]
        for key in (f"{g.language}/{kind}", f"all/{kind}", f"{g.language}/all", "all/all"):
            groups[key].append(g)
        if kind == "edit":
            groups[f"all/{g.kind}"].append(g)
    return {
        key: {
            "n": len(items),
            "action": round(sum(g.action_right for g in items) / len(items), 4),
            "caption": round(sum(g.caption_right for g in items) / len(items), 4),
            "exact": round(sum(g.exact for g in items) / len(items), 4),
        }
        for key, items in sorted(groups.items())
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", default="world", help="a shipped adapter's name or a folder")
    parser.add_argument("--json", type=Path, help="write every graded turn and the summary here")
    parser.add_argument(
        "--per-language", type=int, nargs=3, default=(50, 20, 10), metavar=("REQUESTS", "EDITS", "CHAT")
    )
    parser.add_argument("--short", type=int, default=10, help='short requests per language ("draw a red circle")')
    parser.add_argument(
        "--bare", type=int, default=10, help="one-object requests said bare, after 0-4 pictures, per language"
    )
    args = parser.parse_args()
    runtime = SmolRuntime(adapter=find_adapter(args.adapter))
    requests, edits, chat = args.per_language
    sets = held_back(requests, edits, chat, short=args.short, bare=args.bare)
    graded = grade(runtime, [*sets.requests, *sets.edits, *sets.chat, *sets.outside, *sets.short, *sets.bare])
    table = summary(graded)
    for key, row in table.items():
        shares = "  ".join(f"{name} {row[name]:.3f}" for name in ("action", "caption", "exact"))
        print(f"{key:24} n={row['n']:4}  {shares}")
    print(f"CPU seconds per turn, median: {statistics.median(g.seconds for g in graded):.2f}")
    wrong = [g for g in graded if not g.exact]
    for g in wrong[:40]:
        print(f"  {g.language} {g.kind}: {g.text!r}\n    want {g.expected}\n    got  {g.got}")
    if args.json:
        rows = [{**asdict(g), "exact": g.exact} for g in graded]
        args.json.write_text(json.dumps({"summary": table, "turns": rows}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
