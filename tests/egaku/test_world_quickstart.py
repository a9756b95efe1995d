"""The quick start's default model, judged end to end: words in, the agent's tool call, a picture read back."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.offline_world import cells_mask
from egaku.config import load_config
from tests.egaku.test_cli import ROOT, config_text, egaku
from tests.fakes.openai import Call, FakeOpenAI, Say
from training.agent.lexicon import ENGLISH, JAPANESE
from training.world.evaluate import draw
from training.world.judge import Verdict, edit_change, judge
from training.world.scenes import Scene, Shape
from worker.pipelines import choose_placement, load_pipeline
from worker.settings import world_preset

ASKED = Scene(background="white", shapes=(Shape("circle", "red", "large", (1, 1)),))
SEED = 0


def test_the_example_config_draws_with_the_world_preset_and_keeps_tiny() -> None:
    worker = load_config(ROOT / "config.example.toml").worker
    assert worker.default_model == "world"
    assert worker.models["world"] == world_preset()
    assert worker.models["tiny"].source == "tiny"


async def test_chat_draws_the_scene_it_was_asked_for(
    tmp_path: Path, worker_cache: Path, fake_openai: FakeOpenAI
) -> None:
    """`egaku chat` on the example config (the `world` preset); a scripted LLM turns the words into the call."""
    fake_openai.then(Call("generate_image", {"prompt": ASKED.caption(), "seed": SEED}), Say("Here it is."))
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache, llm=fake_openai), encoding="utf-8")
    code, out, err = await egaku(
        "chat", "--config", str(path), stdin=b"draw a big red circle in the middle, on white\n",
        env={**os.environ, "FAKE_OPENAI_KEY": "sk-fake"},
    )  # fmt: skip
    assert code == 0, err[-3000:]
    image_line = next(line for line in out.splitlines() if line.strip().startswith("image: "))
    posted = np.asarray(Image.open(image_line.strip().removeprefix("image: ")).convert("RGB"))
    # The judge reads the posted picture exactly as it reads the model's own picture for these words and
    # this seed: the whole path (agent, tool, worker, PNG) delivered the scene asked for to the model intact.
    with tempfile.TemporaryDirectory() as cache:
        pipe = load_pipeline(world_preset(), choose_placement("cpu"), Path(cache))
    preset = world_preset()
    direct = draw(pipe, [ASKED.caption()], [SEED], preset.steps, preset.guidance)[0]
    assert posted.shape == (64, 64, 3)
    assert np.abs(posted.astype(np.int16) - direct.astype(np.int16)).max() <= 2
    assert judge(posted, ASKED) == judge(direct, ASKED)
    # And the picture is the scene asked for: a white background with a large red circle in the centre.
    assert judge(posted, ASKED) == (True, [Verdict(colour=True, shape=True, size=True, position=True)])
    assert fake_openai.requests[0]["messages"][-1]["content"].endswith("draw a big red circle in the middle, on white")


RED_CENTRE = Scene(background="white", shapes=(Shape("circle", "red", "large", (1, 1)),))
BLUE_TOP_LEFT = Scene(background="black", shapes=(Shape("circle", "blue", "large", (0, 0)),))
YELLOW_TOP_LEFT = Scene(background="black", shapes=(Shape("circle", "yellow", "large", (0, 0)),))


SEED_LINE = re.compile(r"^\s*\(seed (\d+), ")


@dataclass(frozen=True)
class Posted:
    """What `egaku chat` printed for a run of lines: replies, and each picture's prompt, seed and pixels."""

    replies: list[str]
    prompts: list[str]
    seeds: list[int]
    pictures: list[np.ndarray]


async def chat(tmp_path: Path, worker_cache: Path, lines: list[str]) -> Posted:
    """Type the lines into `egaku chat` on the example config as it ships (the bundled SmolLM2, the world)."""
    path = tmp_path / "egaku.toml"
    # The first turn loads SmolLM2 and merges the adapter (about 25 s alone; past the 300 s turn bound on a
    # 2-core machine shared with other work): only the bound is raised, the rest is the example config.
    text = config_text(tmp_path, worker_cache).replace("turn_timeout_s = 300.0", "turn_timeout_s = 700.0")
    assert "turn_timeout_s = 700.0" in text
    path.write_text(text, encoding="utf-8")
    code, out, err = await egaku("chat", "--config", str(path), stdin="\n".join(lines).encode() + b"\n", timeout_s=800)
    assert code == 0, err[-3000:]
    printed = [line.strip() for line in out.splitlines()]
    return Posted(
        replies=[line.removeprefix("egaku> ") for line in printed if line.startswith("egaku> ")],
        prompts=[line.removeprefix("prompt: ") for line in printed if line.startswith("prompt: ")],
        seeds=[int(m.group(1)) for line in printed if (m := SEED_LINE.match(line))],
        pictures=[
            np.asarray(Image.open(line.removeprefix("image: ")).convert("RGB"))
            for line in printed
            if line.startswith("image: ")
        ],
    )


def read_as_asked(picture: np.ndarray, scene: Scene) -> tuple[bool, list[tuple[bool, bool, bool]]]:
    """The judge's reading of what the words decide: the background, and each object's colour, size and place.

    Shape is left out on purpose: the painter draws the asked-for shape for only part of its seeds (its
    known weak point, issue 27 part 2; docs/benchmarks.md), and the worker picks the seed at random.
    Colour, size, place and background were read right for 100 of 100 seeds of each scene below.
    """
    background, verdicts = judge(picture, scene)
    return background, [(v.colour, v.size, v.position) for v in verdicts]


RIGHT = (True, [(True, True, True)])


@pytest.mark.timeout(900)  # two real models load and run on the CPU (the global bound is 300 s)
async def test_the_bundled_model_draws_what_it_is_told_in_english_and_japanese(
    tmp_path: Path, worker_cache: Path
) -> None:
    """The bundled SmolLM2 with the world adapter, no script: the model writes the world's exact captions,
    each posted picture is the painter's own picture of that caption at the seed it was drawn with, and
    the judge reads each as the scene asked for."""
    posted = await chat(
        tmp_path,
        worker_cache,
        ["draw a big red circle in the middle, on white", "黒い背景の左上に大きい青い丸を描いて"],
    )
    assert posted.replies == [ENGLISH.drawn, JAPANESE.drawn]
    assert posted.prompts == [RED_CENTRE.caption(), BLUE_TOP_LEFT.caption()]
    with tempfile.TemporaryDirectory() as cache:
        pipe = load_pipeline(world_preset(), choose_placement("cpu"), Path(cache))
    preset = world_preset()
    for picture, own in zip(
        posted.pictures, draw(pipe, posted.prompts, posted.seeds, preset.steps, preset.guidance), strict=True
    ):
        assert np.abs(picture.astype(np.int16) - own.astype(np.int16)).max() <= 2
    assert [read_as_asked(p, s) for p, s in zip(posted.pictures, (RED_CENTRE, BLUE_TOP_LEFT), strict=True)] == [
        RIGHT
    ] * 2


@pytest.mark.timeout(900)
async def test_the_bundled_model_edits_what_it_is_told(tmp_path: Path, worker_cache: Path) -> None:
    """ "make the circle yellow" after a Japanese request: the whole new caption, the circle recoloured, the
    rest of the picture as it was."""
    posted = await chat(tmp_path, worker_cache, ["黒い背景の左上に大きい青い丸を描いて", "make the circle yellow"])
    assert posted.replies == [JAPANESE.drawn, ENGLISH.edited]
    assert posted.prompts == [BLUE_TOP_LEFT.caption(), YELLOW_TOP_LEFT.caption()]
    assert posted.seeds[1] == posted.seeds[0]  # an edit keeps its picture's seed
    assert [read_as_asked(p, s) for p, s in zip(posted.pictures, (BLUE_TOP_LEFT, YELLOW_TOP_LEFT), strict=True)] == [
        RIGHT
    ] * 2
    change = edit_change(posted.pictures[0], posted.pictures[1], cells_mask(list(BLUE_TOP_LEFT.shapes)))
    assert change.ratio < 0.2
