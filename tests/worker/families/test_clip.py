"""The CLIP families (SD1.5, SDXL): a negative prompt reaches the denoiser, for short prompts and long ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.worker.direct import assert_negative_as_direct, fresh_pipeline
from tests.worker.families.conftest import keyword_inputs
from tests.worker.test_teach import teach_engine
from worker.engine import Engine
from worker.protocol import GenerationRequest

NEGATIVE = "blurry, dark"
LONG = " ".join(f"word{i}" for i in range(60))  # several 77-token windows: the family's own encoding


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def clip_engine(request: pytest.FixtureRequest, worker_cache: Path) -> Engine:
    """An engine per CLIP family, serving its tiny pipeline under the family's name."""
    return teach_engine(worker_cache, request.param)


def diffusers_encoding(pipe: Any, text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`text` encoded by the pipeline's own `encode_prompt`, as a prompt: its embeddings and SDXL's pooled ones."""
    with torch.inference_mode():
        encoded = pipe.encode_prompt(text, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)
    return encoded[0], (encoded[2] if len(encoded) == 4 else None)


@pytest.mark.parametrize("prompt", ["a fox", LONG], ids=["short", "long"])
def test_the_denoiser_reads_the_negative_prompt_as_the_encoders_encode_it(clip_engine: Engine, prompt: str) -> None:
    name = clip_engine.model_names[0]
    plan = clip_engine.plan(GenerationRequest(prompt=prompt, negative_prompt=NEGATIVE, seed=1))
    _, seen = keyword_inputs(clip_engine._pipe(name, "generate").unet, lambda: clip_engine.render(plan))
    # Classifier-free guidance runs the negative and the prompt as one batch: [negative, prompt].
    states = seen[0]["encoder_hidden_states"]
    windows = states.shape[1] // 77
    assert (states.shape[0], windows > 1) == (2, prompt == LONG)  # the long prompt takes the windowed path
    reference = fresh_pipeline(clip_engine, name)
    negative, pooled = diffusers_encoding(reference, NEGATIVE)
    # A long prompt's batch has as many windows as it needs; the short negative fills the rest with empty ones.
    empty, _ = diffusers_encoding(reference, "")
    torch.testing.assert_close(states[:1], torch.cat([negative, *[empty] * (windows - 1)], dim=1))
    if pooled is not None:  # SDXL also reads the pooled vector, from the first window
        torch.testing.assert_close(seen[0]["added_cond_kwargs"]["text_embeds"][:1], pooled)


def test_a_negative_prompt_draws_what_diffusers_draws_with_it(clip_engine: Engine) -> None:
    assert_negative_as_direct(clip_engine, GenerationRequest(prompt="a fox", negative_prompt=NEGATIVE, seed=4))
