"""The adapter's training command: every lesson, the adapter the runtime loads, and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.smol import SmolRuntime
from training.agent.train import FourthLesson, SecondLesson, Settings, ThirdLesson, train

TINY = Settings(steps=2, batch=1, warmup=1, save_every=1, threads=2)
TINY_SECOND = SecondLesson(second_steps=2, second_warmup=1)
TINY_THIRD = ThirdLesson(third_steps=1, third_warmup=1)
TINY_FOURTH = FourthLesson(fourth_steps=1, fourth_warmup=1)


def test_four_lessons_write_an_adapter_the_runtime_loads_and_a_rerun_resumes(tmp_path: Path) -> None:
    out, work = tmp_path / "world", tmp_path / "world.work"
    record = train(TINY, out, work, TINY_SECOND, TINY_THIRD, TINY_FOURTH)
    assert {p.name for p in out.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "world.json", "training.json",
    }  # fmt: skip
    assert {p.name for p in work.iterdir()} == {
        "checkpoint.pt", "checkpoint-2.pt", "checkpoint-3.pt", "checkpoint-4.pt",
    }  # fmt: skip
    assert (record["examples"], len(record["losses"])) == (2, 2)
    assert [(lesson["examples"], len(lesson["losses"])) for lesson in record["lessons"]] == [(2, 2), (1, 1), (1, 1)]
    assert record["second"] == {"second_steps": 2, "second_lr": 5e-4, "second_warmup": 1, "second_seed": 28}
    assert record["third"] == {"third_steps": 1, "third_lr": 4e-4, "third_warmup": 1, "third_seed": 29}
    assert record["fourth"] == {"fourth_steps": 1, "fourth_lr": 3e-4, "fourth_warmup": 1, "fourth_seed": 30}
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["lessons"] == record["lessons"]
    # The runtime reads what was written (its grammar from world.json) and answers inside it.
    runtime = SmolRuntime(adapter=out)
    assert runtime.world is not None and "triangle" in runtime.world.shapes

    # Every lesson is done: the same command (on another thread count) takes no step again.
    again = train(Settings(**{**TINY.__dict__, "threads": 1}), out, work, TINY_SECOND, TINY_THIRD, TINY_FOURTH)
    assert (again["losses"], again["lessons"]) == (record["losses"], record["lessons"])
    # A checkpoint from other settings is never silently mixed in.
    with pytest.raises(SystemExit, match="other settings"):
        train(TINY, out, work, SecondLesson(second_steps=2, second_warmup=1, second_lr=1e-3), TINY_THIRD, TINY_FOURTH)
    with pytest.raises(SystemExit, match=r"checkpoint-3\.pt is from other settings"):
        train(TINY, out, work, TINY_SECOND, ThirdLesson(third_steps=1, third_warmup=1, third_seed=5), TINY_FOURTH)
    with pytest.raises(SystemExit, match=r"checkpoint-4\.pt is from other settings"):
        train(TINY, out, work, TINY_SECOND, TINY_THIRD, FourthLesson(fourth_steps=1, fourth_warmup=1, fourth_lr=1e-3))
