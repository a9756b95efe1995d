"""The adapter's training command: every lesson, the adapter the runtime loads, and resuming."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.smol import SmolRuntime
from training.agent.train import (
    FifthLesson,
    FourthLesson,
    SecondLesson,
    Settings,
    SixthLesson,
    ThirdLesson,
    train,
)

TINY = Settings(steps=2, batch=1, warmup=1, save_every=1, threads=2)
TINY_SECOND = SecondLesson(second_steps=2, second_warmup=1)
TINY_THIRD = ThirdLesson(third_steps=1, third_warmup=1)
TINY_FOURTH = FourthLesson(fourth_steps=1, fourth_warmup=1)
TINY_FIFTH = FifthLesson(fifth_steps=2, fifth_warmup=1)
TINY_SIXTH = SixthLesson(sixth_steps=1, sixth_warmup=1)
LESSONS = (TINY_SECOND, TINY_THIRD, TINY_FOURTH, TINY_FIFTH, TINY_SIXTH)


@dataclass(frozen=True)
class Whole:
    """A whole tiny run of every lesson: what the tests compare with (taught once: each run loads the model)."""

    out: Path
    work: Path
    record: dict[str, Any]


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Whole:
    folder = tmp_path_factory.mktemp("whole")
    out, work = folder / "world", folder / "world.work"
    return Whole(out, work, train(TINY, out, work, *LESSONS))


def test_six_lessons_write_an_adapter_the_runtime_loads_and_a_rerun_resumes(whole: Whole) -> None:
    out, work, record = whole.out, whole.work, whole.record
    assert {p.name for p in out.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "world.json", "training.json",
    }  # fmt: skip
    assert {p.name for p in work.iterdir()} == {
        "checkpoint.pt", "checkpoint-2.pt", "checkpoint-3.pt", "checkpoint-4.pt", "checkpoint-5.pt", "checkpoint-6.pt",
    }  # fmt: skip
    assert (record["examples"], len(record["losses"])) == (2, 2)
    assert [(lesson["examples"], len(lesson["losses"])) for lesson in record["lessons"]] == [
        (2, 2),
        (1, 1),
        (1, 1),
        (2, 2),
        (1, 1),
    ]
    assert record["second"] == {"second_steps": 2, "second_lr": 5e-4, "second_warmup": 1, "second_seed": 28}
    assert record["third"] == {"third_steps": 1, "third_lr": 4e-4, "third_warmup": 1, "third_seed": 29}
    assert record["fourth"] == {"fourth_steps": 1, "fourth_lr": 3e-4, "fourth_warmup": 1, "fourth_seed": 30}
    assert record["fifth"] == {"fifth_steps": 2, "fifth_lr": 2e-4, "fifth_warmup": 1, "fifth_seed": 31}
    assert record["sixth"] == {"sixth_steps": 1, "sixth_lr": 2e-4, "sixth_warmup": 1, "sixth_seed": 32}
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
        train(TINY, out, work, TINY_SECOND, TINY_THIRD, fourth, *LESSONS[3:])
    with pytest.raises(SystemExit, match=r"checkpoint-5\.pt is from other settings"):
        train(TINY, out, work, *LESSONS[:3], FifthLesson(fifth_steps=2, fifth_warmup=1, fifth_seed=3), TINY_SIXTH)
    with pytest.raises(SystemExit, match=r"checkpoint-6\.pt is from other settings"):
        train(TINY, out, work, *LESSONS[:4], SixthLesson(sixth_steps=1, sixth_warmup=1, sixth_lr=1e-3))


def test_the_fifth_lesson_goes_on_from_a_written_adapter_as_from_a_whole_run(tmp_path: Path, whole: Whole) -> None:
    # The fifth lesson (and the sixth after it) goes on from the four before as written: taken from an adapter
    # of those four (as from the shipped one), it writes the same adapter, byte for byte, with the same losses.
    out, record = whole.out, whole.record
    four = train(TINY, tmp_path / "four", tmp_path / "four.work", *LESSONS[:3], FifthLesson(fifth_steps=0))
    assert len(four["lessons"]) == 3
    taken = train(TINY, tmp_path / "taken", tmp_path / "taken.work", *LESSONS, start=tmp_path / "four")
    assert not (tmp_path / "taken.work" / "checkpoint-4.pt").exists()  # nothing before the fifth was taught again
    assert taken["lessons"][:3] == four["lessons"][:3] and taken["losses"] == record["losses"]
    assert [lesson["losses"] for lesson in taken["lessons"][3:]] == [
        lesson["losses"] for lesson in record["lessons"][3:]
    ]
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
            *LESSONS[3:],
            start=tmp_path / "four",
        )
    with pytest.raises(SystemExit, match="the next must be lesson 5"):
        train(TINY, tmp_path / "x", tmp_path / "x.work", *LESSONS, start=out)  # it holds all six already


def test_the_sixth_lesson_goes_on_from_an_adapter_of_five_as_from_a_whole_run(tmp_path: Path, whole: Whole) -> None:
    # The shipped adapter holds five lessons: `--from` it teaches only the sixth, and gives what a whole run gives.
    five = train(TINY, tmp_path / "five", tmp_path / "five.work", *LESSONS[:4], SixthLesson(sixth_steps=0))
    six = train(TINY, tmp_path / "six", tmp_path / "six.work", *LESSONS, start=tmp_path / "five")
    assert [p.name for p in (tmp_path / "six.work").iterdir()] == ["checkpoint-6.pt"]
    assert six["lessons"][:4] == five["lessons"] and six["losses"] == whole.record["losses"]
    taught, expected = six["lessons"][4], whole.record["lessons"][4]
    assert (taught["losses"], taught["examples_sha256"]) == (expected["losses"], expected["examples_sha256"])
    written = "adapter_model.safetensors"
    assert (tmp_path / "six" / written).read_bytes() == (whole.out / written).read_bytes()
