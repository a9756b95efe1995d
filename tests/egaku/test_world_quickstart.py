"""The quick start's default model, judged end to end: words in, the agent's tool call, a picture read back."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.offline_world import cells_mask
from egaku.config import load_config
from tests.egaku.test_cli import ROOT, config_text, egaku
from tests.fakes.openai import Call, FakeOpenAI, Say
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


async def test_the_bundled_model_draws_and_edits_what_it_is_told(tmp_path: Path, worker_cache: Path) -> None:
    """`egaku chat` on the example config as it ships: the bundled SmolLM2 with the world adapter, no script.

    An English request, a Japanese one, then an edit in plain words: the model writes the world's exact
    captions, and every posted picture is read back as the scene asked for.
    """
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache), encoding="utf-8")
    lines = [
        "draw a big red circle in the middle, on white",
        "黒い背景の左上に大きい青い丸を描いて",
        "make the circle yellow",
    ]
    code, out, err = await egaku("chat", "--config", str(path), stdin="\n".join(lines).encode() + b"\n")
    assert code == 0, err[-3000:]
    replies = [line.removeprefix("egaku> ") for line in out.splitlines() if line.startswith("egaku> ")]
    prompts = [
        line.strip().removeprefix("prompt: ") for line in out.splitlines() if line.strip().startswith("prompt: ")
    ]
    files = [line.strip().removeprefix("image: ") for line in out.splitlines() if line.strip().startswith("image: ")]
    assert replies == ["Here it is!", "描きました！", "Done, here is the change."], out
    assert prompts == [RED_CENTRE.caption(), BLUE_TOP_LEFT.caption(), YELLOW_TOP_LEFT.caption()]
    pictures = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    right = (True, [Verdict(colour=True, shape=True, size=True, position=True)])
    assert [judge(p, s) for p, s in zip(pictures, (RED_CENTRE, BLUE_TOP_LEFT, YELLOW_TOP_LEFT), strict=True)] == [
        right
    ] * 3
    # The edit changed the circle and left the rest of the picture as it was.
    change = edit_change(pictures[1], pictures[2], cells_mask(list(BLUE_TOP_LEFT.shapes)))
    assert change.ratio < 0.2
