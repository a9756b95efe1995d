"""The adapter's training command: every lesson, the adapter the runtime loads, and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.smol import SmolRuntime
from training.agent.train import FifthLesson, FourthLesson, SecondLesson, Settings, ThirdLesson, train

TINY = Settings(steps=2, batch=1, warmup=1, save_every=1, threads=2)
TINY_SECOND = SecondLesson(second_steps=2, second_warmup=1)
TINY_THIRD = ThirdLesson(third_steps=1, third_warmup=1)
TINY_FOURTH = FourthLesson(fourth_steps=1, fourth_warmup=1)
TINY_FIFTH = FifthLesson(fifth_steps=2, fifth_warmup=1)
LESSONS = (TINY_SECOND, TINY_THIRD, TINY_FOURTH, TINY_FIFTH)


def test_five_lessons_write_an_adapter_the_runtime_loads_and_a_rerun_resumes(tmp_path: Path) -> None:
    out, work = tmp_path / "world", tmp_path / "world.work"
    record = train(TINY, out, work, *LESSONS)
    assert {p.name for p in out.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "world.json", "training.json",
    }  # fmt: skip
    assert {p.name for p in work.iterdir()} == {
        "checkpoint.pt", "checkpoint-2.pt", "checkpoint-3.pt", "checkpoint-4.pt", "checkpoint-5.pt",
    }  # fmt: skip
    assert (record["examples"], len(record["losses"])) == (2, 2)
    assert [(lesson["examples"], len(lesson["losses"])) for lesson in record["lessons"]] == [
        (2, 2),
        (1, 1),
        (1, 1),
        (2, 2),
    ]
    assert record["second"] == {"second_steps": 2, "second_lr": 5e-4, "second_warmup": 1, "second_seed": 28}
    assert record["third"] == {"third_steps": 1, "third_lr": 4e-4, "third_warmup": 1, "third_seed": 29}
    assert record["fourth"] == {"fourth_steps": 1, "fourth_lr": 3e-4, "fourth_warmup": 1, "fourth_seed": 30}
    assert record["fifth"] == {"fifth_steps": 2, "fifth_lr": 2e-4, "fifth_warmup": 1, "fifth_seed": 31}
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["lessons"] == record["lessons"]
    # The runtime reads what was written (its grammar from world.json) and answers inside it.
    runtime = SmolRuntime(adapter=out)
    assert runtime.world is not None and "triangle" in runtime.world.shapes

    # Every lesson is done: the same command (on another thread count) takes no step again.
    again = train(Settings(**{**TINY.__dict__, "threads": 1}), out, work, *LESSONS)
    assert (again["losses"], again["lessons"]) == (record["losses"], record["lessons"])
    # A checkpoint from other settings is never silently mixed in.
    with pytest.raises(SystemExit, match="other settings"):
        train(TINY, out, work, SecondLesson(second_steps=2, second_warmup=1, second_lr=1e-3), *LESSONS[1:])
    with pytest.raises(SystemExit, match=r"checkpoint-3\.pt is from other settings"):
        train(TINY, out, work, TINY_SECOND, ThirdLesson(third_steps=1, third_warmup=1, third_seed=5), *LESSONS[2:])
    with pytest.raises(SystemExit, match=r"checkpoint-4\.pt is from other settings"):
        fourth = FourthLesson(fourth_steps=1, fourth_warmup=1, fourth_lr=1e-3)
        train(TINY, out, work, TINY_SECOND, TINY_THIRD, fourth, TINY_FIFTH)
    with pytest.raises(SystemExit, match=r"checkpoint-5\.pt is from other settings"):
        train(TINY, out, work, *LESSONS[:3], FifthLesson(fifth_steps=2, fifth_warmup=1, fifth_seed=3))


def test_the_fifth_lesson_goes_on_from_a_written_adapter_as_from_a_whole_run(tmp_path: Path) -> None:
    # The fifth lesson goes on from the four before as written: taken from an adapter of those four (as from
    # the shipped one), it writes the same adapter, byte for byte, with the same losses.
    out = tmp_path / "world"
    record = train(TINY, out, tmp_path / "world.work", *LESSONS)
    four = train(TINY, tmp_path / "four", tmp_path / "four.work", *LESSONS[:3], FifthLesson(fifth_steps=0))
    assert len(four["lessons"]) == 3
    taken = train(TINY, tmp_path / "taken", tmp_path / "taken.work", *LESSONS, start=tmp_path / "four")
    assert not (tmp_path / "taken.work" / "checkpoint-4.pt").exists()  # nothing before the fifth was taught again
    assert taken["lessons"][:3] == four["lessons"][:3] and taken["losses"] == record["losses"]
    assert taken["lessons"][3]["losses"] == record["lessons"][3]["losses"]
    written = "adapter_model.safetensors"
    assert (tmp_path / "taken" / written).read_bytes() == (out / written).read_bytes()
    # Taken only when they are this run's lessons: the same settings and data.
    with pytest.raises(SystemExit, match="trained with other third"):
        third = ThirdLesson(third_steps=1, third_warmup=1, third_seed=5)
        train(
            TINY,
            tmp_path / "x",
            tmp_path / "x.work",
            TINY_SECOND,
            third,
            TINY_FOURTH,
            TINY_FIFTH,
            start=out.parent / "four",
        )
    with pytest.raises(SystemExit, match="the next must be lesson 5"):
        train(TINY, tmp_path / "x", tmp_path / "x.work", *LESSONS, start=out)  # it holds all five already
