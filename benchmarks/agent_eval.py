"""A multilingual evaluation of the agent, through egaku's real agent path, against any OpenAI-compatible model.

Each turn of `benchmarks/agent_eval.toml` runs through the real chat-model factory, the
LangGraph agent, its middleware, the image tools and the image history (SQLite). Only the
GPU is replaced: images are "rendered" at once as a small PNG, because the evaluation is of
the model's decisions, not of pixels. The turn is then scored: the action (reply, draw or
edit), the reply's language, an English prompt, quoted text kept verbatim, the edit's
reference, and nothing forbidden leaking.

    python -m benchmarks.agent_eval --base-url http://127.0.0.1:8080/v1 --model NAME [--api-key-env VAR]
        [--tool-calling native|json] [--label TEXT] [--write docs/benchmarks.md]
    python -m benchmarks.agent_eval --embedded --write docs/benchmarks.md      # the bundled SmolLM2
    python -m benchmarks.agent_eval --config egaku.toml --write docs/benchmarks.md  # [llm] and [agent] from a config
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import re
import shlex
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Self

from langchain_core.messages import HumanMessage
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.graph import build_graph
from agent.llm import build_chat_model
from agent.service import Agent, TurnRequest, with_attachment
from benchmarks._markdown import device, write_section
from egaku.config import Config, LLMSettings, load_config
from egaku.errors import EditNotPossible, EgakuError
from tools.backends.base import ImageEdit, ImageUpscale, ProgressCallback, Upscaled
from tools.checks.languages import detect_language
from tools.pictures import RenderedImage
from tools.service.images import ImageService
from tools.stores.history import History
from worker.protocol import GenerationRequest

EVAL_SET = Path(__file__).with_name("agent_eval.toml")
Language = Literal["ja", "zh", "ko", "en"]
Action = Literal["reply", "draw", "edit"]
LANGUAGES: tuple[Language, ...] = ("ja", "zh", "ko", "en")
KINDS = ("chat", "draw", "edit", "quote", "refusal")
CHECKS = ("action", "language", "english prompt", "quoted verbatim", "reference", "nothing forbidden")
USER_ID = "eval-user"
USER_NAME = "user"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalImage(_Strict):
    """An image in a turn's history before it starts."""

    prompt: str
    kind: Literal["generate", "upload"] = "generate"
    caption: str | None = None  # what a captioner would say of it


class EvalTurn(_Strict):
    """One user message and what the agent must do with it."""

    id: str
    language: Language
    kind: Literal["chat", "draw", "edit", "quote", "refusal"]
    text: str = Field(min_length=1)
    expect: Action
    history: tuple[str, ...] = ()
    ref: str | None = None
    reply_to: str | None = None
    upload: str | None = None
    imagine: bool = False
    quoted: tuple[str, ...] = ()
    prompt_forbids: tuple[str, ...] = ()
    reply_forbids: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.expect == "edit") != (self.ref is not None):
            raise ValueError(f"{self.id}: an edit names its `ref`, and only an edit does")
        if self.ref is not None and self.ref not in (*self.history, self.upload):
            raise ValueError(f"{self.id}: ref {self.ref!r} is neither in its history nor its upload")
        if self.reply_to is not None and self.reply_to not in self.history:
            raise ValueError(f"{self.id}: reply_to {self.reply_to!r} is not in its history")
        if self.quoted and self.expect == "reply":
            raise ValueError(f"{self.id}: quoted text is checked in a prompt, so the turn must draw or edit")
        for quote in self.quoted:
            if quote not in self.text:
                raise ValueError(f"{self.id}: quoted {quote!r} is not in the text")
        return self


class EvalSet(_Strict):
    """The whole evaluation file."""

    images: dict[str, EvalImage]
    turn: tuple[EvalTurn, ...]

    @model_validator(mode="after")
    def _known_images(self) -> Self:
        for turn in self.turn:
            for name in (*turn.history, *filter(None, [turn.upload])):
                if name not in self.images:
                    raise ValueError(f"{turn.id}: unknown image {name!r}")
        if len({t.id for t in self.turn}) != len(self.turn):
            raise ValueError("turn ids must be unique")
        return self


def load_eval_set(path: Path = EVAL_SET) -> EvalSet:
    """Read and validate the evaluation set."""
    return EvalSet.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


# -- scoring -----------------------------------------------------------------


def without(text: str, quoted: Sequence[str]) -> str:
    """The text with the quoted strings taken out (they keep their own language)."""
    for quote in quoted:
        text = text.replace(quote, " ")
    return text


@dataclass(frozen=True)
class Outcome:
    """What the agent did with one turn."""

    action: Action | Literal["error"]
    reply: str
    prompt: str | None = None
    parent: str | None = None  # the history id the edit changed
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Scored:
    """One turn's outcome and its checks (only the checks that apply to the turn)."""

    turn: EvalTurn
    outcome: Outcome
    checks: dict[str, bool]

    @property
    def passed(self) -> bool:
        """Every check that applies passed."""
        return all(self.checks.values())

    def failed(self) -> list[str]:
        """The names of the failed checks."""
        return [name for name, ok in self.checks.items() if not ok]


def score(turn: EvalTurn, outcome: Outcome, ids: Mapping[str, str]) -> Scored:
    """The checks that apply to a turn, each passed or not."""
    checks = {
        "action": outcome.action == turn.expect,
        "language": detect_language(without(outcome.reply, turn.quoted)) == turn.language,
    }
    if turn.expect != "reply":
        prompt = outcome.prompt or ""
        checks["english prompt"] = bool(prompt) and detect_language(without(prompt, turn.quoted)) == "en"
    if turn.quoted:
        checks["quoted verbatim"] = all(q in (outcome.prompt or "") for q in turn.quoted)
    if turn.ref is not None:
        checks["reference"] = outcome.parent is not None and outcome.parent == ids.get(turn.ref)
    if turn.prompt_forbids or turn.reply_forbids:
        seen = [(outcome.prompt or "", turn.prompt_forbids), (outcome.reply, turn.reply_forbids)]
        checks["nothing forbidden"] = not any(w.lower() in text.lower() for text, words in seen for w in words)
    return Scored(turn, outcome, checks)


# -- running -----------------------------------------------------------------


def swatch(name: str) -> bytes:
    """A small PNG, a different colour for each image name."""
    digest = sum(map(ord, name))
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (digest * 37 % 256, digest * 91 % 256, digest * 53 % 256)).save(buffer, format="PNG")
    return buffer.getvalue()


class InstantImages:
    """The image backend and captioner: answers at once (the GPU is not evaluated).

    Its captions are the evaluation set's own, so a turn is scored on what the model does
    with a good caption, not on the captioner.
    """

    def __init__(self, images: Mapping[str, EvalImage]) -> None:
        self.png = swatch("result")
        self.captions = {swatch(name): image.caption or image.prompt for name, image in images.items()}

    async def describe(self, image: bytes) -> str:
        """The caption of a seeded image."""
        return self.captions.get(image, "a small square of one colour")

    def _image(self, prompt: str, negative: str | None, seed: int | None) -> list[RenderedImage]:
        return [
            RenderedImage(
                png=self.png, prompt=prompt, negative_prompt=negative, seed=seed or 1, width=64, height=64,
                steps=1, guidance=5.0, model="eval", user_words="",
            )
        ]  # fmt: skip

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """One image for the request."""
        return self._image(request.prompt, request.negative_prompt, request.seed)

    async def edit(self, edit: ImageEdit, on_progress: ProgressCallback | None = None) -> list[RenderedImage]:
        """One image for the edit."""
        return self._image(edit.request.prompt, edit.request.negative_prompt, edit.request.seed)

    async def upscale(self, upscale: ImageUpscale) -> Upscaled:
        """The agent never upscales (only the buttons do)."""
        raise EditNotPossible("no upscaler in the evaluation")

    async def upscaler(self) -> str | None:
        """None: no upscaler here."""
        return None

    async def cancel(self, job_id: str) -> bool:
        """Nothing to cancel: every image is instant."""
        return False


async def seed_history(
    history: History, conversation: str, turn: EvalTurn, images: Mapping[str, EvalImage]
) -> dict[str, str]:
    """Put the turn's earlier images (and its upload) into the history; their ids by name."""
    ids: dict[str, str] = {}
    for n, name in enumerate((*turn.history, *filter(None, [turn.upload]))):
        image = images[name]
        record = await history.add(
            swatch(name),
            conversation=conversation,
            user_id=USER_ID,
            message_id=f"{conversation}:m{n}",
            user_words=image.prompt,
            prompt=image.prompt,
            negative_prompt=None,
            seed=1000 + n,
            width=64,
            height=64,
            steps=1 if image.kind == "generate" else 0,
            model="eval" if image.kind == "generate" else "",
            kind=image.kind,
        )
        ids[name] = record.id
    return ids


@dataclass
class Report:
    """Every turn, scored, plus how long the model took."""

    label: str
    scored: list[Scored] = field(default_factory=list)

    def rate(self, check: str, turns: Sequence[Scored] | None = None) -> str:
        """'passed/applicable' for one check (or for whole turns with check='turns')."""
        turns = self.scored if turns is None else turns
        if check == "turns":
            return f"{sum(s.passed for s in turns)}/{len(turns)}"
        applicable = [s.checks[check] for s in turns if check in s.checks]
        return f"{sum(applicable)}/{len(applicable)}" if applicable else "–"


async def run_turn(agent: Agent, history: History, turn: EvalTurn, images: Mapping[str, EvalImage]) -> Scored:
    """Run one turn in a fresh conversation and score it."""
    conversation = f"eval:{turn.id}"
    ids = await seed_history(history, conversation, turn, images)
    text = with_attachment(turn.text, ids[turn.upload]) if turn.upload else turn.text
    request = TurnRequest.of(
        conversation_id=conversation,
        user_id=USER_ID,
        user_name=USER_NAME,
        text=text,
        must_draw=turn.imagine,
        source_id=f"{conversation}:now",
        reply_to=f"{conversation}:m{turn.history.index(turn.reply_to)}" if turn.reply_to else None,
    )
    started = time.perf_counter()
    try:
        result = await agent.respond(request)
    except EgakuError as exc:
        outcome = Outcome(action="error", reply="", error=f"{type(exc).__name__}: {exc}")
    else:
        first = result.images[0] if result.images else None
        action: Action = "reply" if first is None else ("edit" if first.parent_id else "draw")
        parent = first.parent_id if first else None
        outcome = Outcome(action=action, reply=result.reply, prompt=first.prompt if first else None, parent=parent)
    outcome = replace(outcome, seconds=time.perf_counter() - started)
    return score(turn, outcome, ids)


async def evaluate(
    config: Config,
    environ: Mapping[str, str],
    workdir: Path,
    eval_set: EvalSet | None = None,
    label: str | None = None,
    only: Callable[[EvalTurn], bool] = lambda _turn: True,
    progress: Callable[[Scored], None] = lambda _scored: None,
    warm_up: bool = False,
) -> Report:
    """Run the evaluation set through the agent that `config` describes; the history lives in workdir."""
    eval_set = eval_set or load_eval_set()
    history = await History.open(workdir / "history.sqlite", workdir / "files")
    try:
        model = build_chat_model(config.llm, environ)
        if warm_up:
            # Loading a local model (or a server's first request) is not a turn's time.
            await model.ainvoke([HumanMessage(content="hello")])
        images = InstantImages(eval_set.images)
        service = ImageService(images, history=history, blocklist=tuple(config.safety.blocklist))
        graph = build_graph(model, None, config.agent)
        agent = Agent(graph, service, config.agent, captioner=images, vision=config.llm.vision)
        report = Report(label or default_label(config.llm))
        for turn in interleaved(eval_set.turn):
            if only(turn):
                scored = await run_turn(agent, history, turn, eval_set.images)
                report.scored.append(scored)
                progress(scored)
        return report
    finally:
        await history.close()


def interleaved(turns: Sequence[EvalTurn]) -> list[EvalTurn]:
    """The turns with the languages taking turns, so that a run stopped part way is still balanced."""
    queues = [[t for t in turns if t.language == language] for language in LANGUAGES]
    order: list[EvalTurn] = []
    while any(queues):
        order += [queue.pop(0) for queue in queues if queue]
    return order


def default_label(llm: LLMSettings) -> str:
    """A name for the model under test."""
    if llm.provider == "embedded":
        return "SmolLM2-135M-Instruct Q4_1 (embedded)"
    return f"{llm.model} ({llm.provider}, {llm.tool_calling} tool calling)"


# -- the table ---------------------------------------------------------------


def markdown(report: Report, command: str, when: dt.date | None = None) -> str:
    """The report as a section of docs/benchmarks.md."""
    scored = report.scored
    seconds = sum(s.outcome.seconds for s in scored) / max(1, len(scored))
    lines = [
        f"## Agent evaluation: {report.label}",
        "",
        f"- Device: {device()}",
        f"- Date: {(when or dt.date.today()).isoformat()}",
        f"- Command: `{command}`",
        f"- Turns: {len(scored)}, all checks passed in {report.rate('turns')}; model time {seconds:.2f} s per turn",
        "",
        "| language | turns passed | " + " | ".join(CHECKS) + " |",
        "|---|---|" + "---|" * len(CHECKS),
    ]
    groups: list[tuple[str, list[Scored]]] = [
        (lang, [s for s in scored if s.turn.language == lang]) for lang in LANGUAGES
    ]
    groups += [(kind, [s for s in scored if s.turn.kind == kind]) for kind in KINDS]
    groups.append(("**all**", scored))
    for name, turns in groups:
        if turns:
            cells = [report.rate("turns", turns), *(report.rate(check, turns) for check in CHECKS)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    failed = [s for s in scored if not s.passed]
    if failed:
        lines += ["", "Failed turns (checks that failed; what the agent did):", ""]
        for s in failed:
            got = s.outcome.error or s.outcome.action
            lines.append(f"- `{s.turn.id}`: {', '.join(s.failed())}; got {got}")
    return "\n".join(lines)


# -- command line --------------------------------------------------------------


def config_for(args: argparse.Namespace) -> tuple[Config, dict[str, str]]:
    """The config under test, and the environment that holds its API key."""
    config = load_config(Path(args.config)) if args.config else Config()
    environ = dict(os.environ)
    llm: dict[str, object] = {}
    if args.embedded:
        llm["provider"] = "embedded"
    elif args.base_url:
        llm.update(provider="openai", base_url=args.base_url)
        if not args.api_key_env:
            # Local servers take any key; the factory insists on one.
            environ["EGAKU_EVAL_API_KEY"] = "none"
            llm["api_key_env"] = "EGAKU_EVAL_API_KEY"
    if args.api_key_env:
        llm["api_key_env"] = args.api_key_env
    for key in ("model", "tool_calling", "temperature", "max_tokens"):
        if getattr(args, key) is not None:
            llm[key] = getattr(args, key)
    agent = {"turn_timeout_s": args.turn_timeout} if args.turn_timeout else {}
    return config.model_copy(
        update={"llm": config.llm.model_copy(update=llm), "agent": config.agent.model_copy(update=agent)}
    ), environ


def main(argv: list[str] | None = None) -> None:
    """Run the evaluation and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="an egaku config file: its [llm], [agent] and [safety] are used")
    parser.add_argument("--embedded", action="store_true", help="the bundled SmolLM2-135M")
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--api-key-env", help="the environment variable that holds the API key")
    parser.add_argument("--model")
    parser.add_argument("--tool-calling", choices=["native", "json"])
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--turn-timeout", type=float, help="seconds per turn (a slow local model needs more)")
    parser.add_argument("--only", help="run only the turns whose id contains this text")
    parser.add_argument("--label", help="the model's name in the table")
    parser.add_argument("--write", type=Path, help="write the table into this markdown file")
    args = parser.parse_args(argv)
    config, environ = config_for(args)

    label = args.label or default_label(config.llm)
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    command = "python -m benchmarks.agent_eval " + shlex.join(sys.argv[1:] if argv is None else argv)
    total = sum(args.only is None or args.only in turn.id for turn in load_eval_set().turn)
    done: list[Scored] = []

    def show(scored: Scored) -> None:
        done.append(scored)
        mark = "ok  " if scored.passed else "FAIL"
        print(f"{mark} {scored.turn.id:28} {scored.outcome.seconds:6.1f}s {', '.join(scored.failed())}", flush=True)
        if args.write and len(done) < total:
            # A slow model stopped part way still leaves honest figures for the turns it finished.
            partial = Report(f"{label} ({len(done)} of {total} turns so far)", list(done))
            write_section(args.write, f"agent_eval:{slug}", markdown(partial, command))

    with tempfile.TemporaryDirectory(prefix="egaku-eval-") as workdir:
        report = asyncio.run(
            evaluate(
                config,
                environ,
                Path(workdir),
                label=label,
                only=lambda turn: args.only is None or args.only in turn.id,
                progress=show,
                warm_up=True,
            )
        )
    text = markdown(report, command)
    print(text)
    if args.write:
        write_section(args.write, f"agent_eval:{slug}", text)


if __name__ == "__main__":
    main()
