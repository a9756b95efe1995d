"""The quick start's default model, judged end to end: words in, the agent's tool call, a picture read back."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from egaku.config import load_config
from tests.egaku.test_cli import ROOT, config_text, egaku
from tests.fakes.openai import Call, FakeOpenAI, Say
from training.world.evaluate import draw
from training.world.judge import Verdict, judge
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
