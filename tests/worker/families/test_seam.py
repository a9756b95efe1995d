"""The family seam: every registered family is complete, the engine names none, bad presets are named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import tiny_model_dir, tiny_worker_settings
from tests.worker.test_engine import as_job, png
from worker.engine import Engine
from worker.errors import JobCancelled, ModelUnavailable
from worker.families import FAMILIES, Family, family_for
from worker.families.sdxl import SDXL
from worker.pipelines import check_preset
from worker.protocol import EditRequest
from worker.scheduler import Progress
from worker.settings import ModelPreset


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_registered_family_is_complete(name: str) -> None:
    family = family_for(name)
    assert family.name == name
    assert family.base in family.pipelines
    for mode in family.pipelines:
        assert family.pipeline_class(mode).__name__ == family.pipelines[mode]  # the installed diffusers has it
    assert hasattr(family.pipeline_class(family.base), family.denoiser) or family.denoiser in (
        family.pipeline_class(family.base).__init__.__annotations__
    )


def test_the_engine_never_names_a_family() -> None:
    worker = Path(__file__).parents[3] / "worker"
    # settings.py names families only as config values (a preset's default family); tiny.py builds them.
    allowed = ("tiny.py", "settings.py")
    modules = [p for p in worker.rglob("*.py") if "families" not in p.parts and p.name not in allowed]
    assert worker / "engine.py" in modules
    for module in modules:
        text = module.read_text()
        named = [f for f in FAMILIES if re.search(rf"[\"']{re.escape(f)}[\"']", text)]
        assert named == [], module
        assert ".unet" not in text and "text_encoder_2" not in text, module


def test_an_unknown_family_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=re.escape(f"unknown family 'sdxxl'; known: {sorted(FAMILIES)}")):
        ModelPreset(source="x", family="sdxxl")


def test_a_folder_of_another_family_is_named_at_start_up(worker_cache: Path) -> None:
    preset = ModelPreset(source=str(tiny_model_dir(worker_cache)), family="sd15")
    with pytest.raises(ModelUnavailable) as caught:
        check_preset("portraits", preset)
    assert caught.value.message == (
        f"model preset 'portraits': {tiny_model_dir(worker_cache)} holds a StableDiffusionXLPipeline, "
        "not a sd15 model: set family = 'sdxl'"
    )


def test_a_class_the_installed_diffusers_lacks_is_named() -> None:
    class Future(SDXL):
        pipelines = {"generate": "StableDiffusion9Pipeline"}  # noqa: RUF012

    with pytest.raises(ModelUnavailable, match="needs diffusers' StableDiffusion9Pipeline, which the installed"):
        Future().pipeline_class("generate")


def test_a_missing_optional_package_is_named() -> None:
    class NeedsVision(Family):
        name = "needs-vision"
        requires = ("torchvision_egaku_absent",)

    with pytest.raises(ModelUnavailable, match="needs the Python package\\(s\\) torchvision_egaku_absent: install"):
        NeedsVision().check_requirements()


def test_the_worker_refuses_to_start_naming_the_preset(worker_cache: Path) -> None:
    wrong = ModelPreset(source=str(tiny_model_dir(worker_cache)), family="sd15-instruct")
    settings = tiny_worker_settings(worker_cache)
    engine = Engine(settings.model_copy(update={"models": {**settings.models, "edits": wrong}}))
    with pytest.raises(ModelUnavailable, match=r"^model preset 'edits': .* holds a StableDiffusionXLPipeline"):
        engine.check()


def test_sd15_instruct_edits_and_can_be_cancelled(worker_cache: Path) -> None:
    settings = tiny_worker_settings(worker_cache, warmup=False)
    instruct = ModelPreset(source="tiny", family="sd15-instruct", steps=6, width=64, height=64)
    engine = Engine(settings.model_copy(update={"models": {**settings.models, "ip2p": instruct}}))
    plan = engine.plan_edit(EditRequest(prompt="make it night", model="ip2p", seed=2), png(), None)
    assert plan.mode == "instruct"
    job = as_job(plan, "i")
    steps: list[int] = []

    def report(_job: object, event: Progress) -> None:
        if event.kind == "step":
            steps.append(event.data["step"])
            if event.data["step"] == 2:
                job.cancel_flag.set()

    (outcome,) = engine.run_batch([job], report)
    assert steps == [1, 2]
    assert isinstance(outcome, JobCancelled) and str(outcome) == "the job was cancelled"
    assert type(engine._pipe("ip2p", "instruct")).__name__ == "StableDiffusionInstructPix2PixPipeline"
