"""The shipped `world` preset through the engine: every worker feature runs on it unchanged."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_worker_settings
from tests.worker.direct import assert_lora_as_fused
from tests.worker.test_engine import as_job, pixels
from tests.worker.world.test_masker import within
from training.world.evaluate import draw, png
from training.world.judge import judge
from training.world.scenes import Scene, Shape, shape_mask
from worker.engine import Engine
from worker.protocol import AdapterChoice, EditRequest, GenerationRequest, GenerationResponse
from worker.scheduler import Progress
from worker.settings import AdapterSpec, world_preset
from worker.world import world_model_dir

SCENE = Scene(background="white", shapes=(Shape("circle", "red", "large", (1, 1)),))


def world_lora(folder: Path) -> Path:
    """A random (non-zero) LoRA for the world UNet, saved the way trainers save them."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(world_model_dir() / "unet")
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    unet.add_adapter(config)
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    )
    return folder / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, worker_cache: Path) -> Engine:
    """A real Engine serving the shipped world preset (loaded from the package's weights folder)."""
    lora = world_lora(tmp_path_factory.mktemp("world-lora"))
    settings = tiny_worker_settings(
        worker_cache,
        models={"world": world_preset()},
        default_model="world",
        adapters={"wobble": AdapterSpec(kind="lora", source=str(lora))},
    )
    engine = Engine(settings)
    engine.load()
    return engine


def test_loads_from_the_shipped_folder_as_a_stock_sd15_pipeline(world: Engine) -> None:
    pipe = world._pipe("world", "generate")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert Path(pipe.config._name_or_path) == world_model_dir()
    assert pipe.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]


def test_the_engine_draws_what_the_judge_measures(world: Engine) -> None:
    """The worker's picture for a caption and seed is the one benchmarks/world.py judges."""
    preset = world_preset()
    served = pixels(world.render(world.plan(GenerationRequest(prompt=SCENE.caption(), seed=7))))
    measured = draw(world._pipe("world", "generate"), [SCENE.caption()], [7], preset.steps, preset.guidance)[0]
    assert served.shape == (64, 64, 3)
    assert np.abs(served - measured.astype(np.int16)).max() <= 2
    assert judge(served.astype(np.uint8), SCENE) == judge(measured, SCENE)


def test_batched_output_equals_unbatched(world: Engine) -> None:
    plans = [
        world.plan(GenerationRequest(prompt="a small blue square at the top left, on a white background", seed=1), "a"),
        world.plan(GenerationRequest(prompt=SCENE.caption(), seed=2, n=2), "b"),
    ]
    assert plans[0].key == plans[1].key
    batched = world.run_batch([as_job(p, p.job_id) for p in plans], lambda j, e: None)
    for together, plan in zip(batched, plans, strict=True):
        single = world.render(plan)
        assert isinstance(together, GenerationResponse)
        for i in range(len(single.data)):
            assert np.abs(pixels(together, i) - pixels(single, i)).max() <= 2


def test_progress_with_previews_and_cancel(world: Engine) -> None:
    plan = world.plan(GenerationRequest(prompt=SCENE.caption(), seed=3, steps=3))
    events: list[Progress] = []
    world.run_batch([as_job(plan, "p")], lambda _job, event: events.append(event))
    assert [e.data["step"] for e in events if e.kind == "step"] == [1, 2, 3]
    preview = next(e for e in events if e.kind == "preview")
    side = 64 // world._pipe("world", "generate").vae_scale_factor  # a preview is as large as the latents
    assert Image.open(io.BytesIO(base64.b64decode(preview.data["b64_png"]))).size == (side, side)

    job = as_job(world.plan(GenerationRequest(prompt=SCENE.caption(), seed=3, steps=10)), "c")
    steps: list[int] = []

    def report(_job: object, event: Progress) -> None:
        if event.kind == "step":
            steps.append(event.data["step"])
            if event.data["step"] == 2:
                job.cancel_flag.set()

    world.run_batch([job], report)
    assert steps == [1, 2]


def test_img2img_and_inpaint_run_on_it(world: Engine) -> None:
    source = png(SCENE.render())
    varied = world.render(world.plan_edit(EditRequest(prompt=SCENE.caption(), seed=5, strength=0.5), source, None))
    assert varied.data[0].parameters.mode == "img2img"
    mask = png((SCENE.masks()[0] * 255).astype(np.uint8))
    green = Scene(background="white", shapes=(Shape("circle", "green", "large", (1, 1)),))
    request = EditRequest(prompt=green.caption(), seed=5, mask_format="luminance")
    edited = world.render(world.plan_edit(request, source, mask))
    assert edited.data[0].parameters.mode == "inpaint"
    after = pixels(edited).astype(np.uint8)
    outside = ~SCENE.masks()[0]
    # The inpaint leaves the background it was not asked to touch (up to the VAE's round trip).
    assert np.abs(after[outside].astype(int) - SCENE.render()[outside].astype(int)).mean() < 12


def test_inpaint_with_a_mask_from_words(world: Engine) -> None:
    request = EditRequest(prompt=SCENE.caption(), mask_prompt="the circle", seed=5, steps=2)
    plan = world.plan_edit(request, png(SCENE.render()), None)
    assert world.render(plan).data[0].parameters.mode == "inpaint"


def test_a_lora_draws_what_diffusers_draws_with_it_fused(world: Engine) -> None:
    wobble = AdapterChoice(name="wobble")
    plain = world.plan(GenerationRequest(prompt=SCENE.caption(), seed=3))
    wobbled = world.plan(GenerationRequest(prompt=SCENE.caption(), seed=3, adapters=[wobble]))
    assert_lora_as_fused(world, plain, wobbled, wobble)


THREE = Scene(
    background="white",
    shapes=(
        Shape("circle", "red", "large", (1, 1)),
        Shape("square", "blue", "small", (0, 0)),
        Shape("triangle", "green", "small", (2, 2)),
    ),
)
CIRCLE = THREE.shapes[0]


def _after(new: Shape | None = None, background: str = "white", added: Shape | None = None) -> Scene:
    """THREE with its circle changed (None: removed), another background, or an object added."""
    kept = tuple(s for s in (new, *THREE.shapes[1:]) if s is not None)
    return Scene(background, (*kept, *((added,) if added else ())))


EDITS = {
    "recolour": (_after(replace(CIRCLE, colour="yellow")), "the red circle"),
    "reshape": (_after(replace(CIRCLE, shape="square")), "the red circle"),
    "resize": (_after(replace(CIRCLE, size="small")), "the big circle"),
    "move": (_after(replace(CIRCLE, cell=(0, 2))), "the circle in the middle"),
    "add": (_after(CIRCLE, added=Shape("square", "purple", "large", (2, 0))), "a purple square"),
    "remove": (_after(None), "the red circle"),
    "background": (_after(CIRCLE, background="black"), "the background"),
}


def _allowed(kind: str, after: Scene) -> np.ndarray:
    """Where the world masker lets the edit paint (tests/worker/world/test_masker.py checks each mask exactly)."""
    if kind == "background":
        return ~THREE.masks().any(axis=0)
    if kind == "add":
        return within(shape_mask(after.shapes[-1]), 3)
    old = within(shape_mask(CIRCLE), 2)
    return old if kind == "remove" else old | within(shape_mask(after.shapes[0]), 3)


@pytest.mark.parametrize("kind", list(EDITS))
def test_a_region_edit_changes_what_it_names_and_not_one_pixel_else(world: Engine, kind: str) -> None:
    """The chat's edit: the whole new caption and the words, no mask; the preset's own masker finds the region."""
    after, words = EDITS[kind]
    request = EditRequest(prompt=after.caption(), mask_prompt=words, seed=4, strength=0.95)
    response = world.render(world.plan_edit(request, png(THREE.render()), None))
    assert response.data[0].parameters.mode == "inpaint"
    edited = pixels(response).astype(np.uint8)
    changed = (edited != THREE.render()).any(axis=2)
    # Whether the model drew the change well is the judge's to say (test_evaluate.py's chat-edit floor).
    assert changed.any() and not (changed & ~_allowed(kind, after)).any()
