"""FLUX.2 [dev] on a tiny real pipeline (Mistral3 encoder): up to 10 pictures, each reaching the VAE in order; an
eleventh is a 400; prompts counted in Mistral's template with FLUX.2's system message, read whole or refused."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tests.worker.families.conftest import family_engine, keyword_inputs, pictures, png_of, reached
from tests.worker.test_engine import as_job, pixels
from worker.engine import Engine
from worker.errors import BadRequest
from worker.families.flux2 import Flux2
from worker.protocol import EditRequest, GenerationRequest


@pytest.fixture(scope="module")
def dev(worker_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return family_engine("flux2", worker_cache, tmp_path_factory.mktemp("flux2"), guidance=4.0)


def test_it_draws_from_text_through_from_pretrained(dev: Engine) -> None:
    result = dev.render(dev.plan(GenerationRequest(prompt="a fox", seed=1, size="64x48")))
    pipe = dev._pipe("flux2", "generate")
    assert (type(pipe).__name__, type(pipe.text_encoder).__name__) == (
        "Flux2Pipeline", "Mistral3ForConditionalGeneration",
    )  # fmt: skip
    assert pixels(result).shape == (48, 64, 3) and result.data[0].parameters.negative_prompt is None


def test_ten_pictures_reach_the_vae_in_order_and_an_eleventh_is_a_400(dev: Engine) -> None:
    made = pictures(*[(64 + 16 * (i % 3), 64) for i in range(10)])
    request = EditRequest(prompt="the ten animals of pictures 1 to 10 at one table", seed=2)
    plan = dev.plan_edit(request, png_of(made[0]), None, extra_images=[png_of(p) for p in made[1:]])
    assert (plan.mode, plan.input_images) == ("instruct", 10)
    pipe = dev._pipe("flux2", "instruct")
    result, seen = reached(pipe, lambda: dev.render(plan))
    expected = [pipe.image_processor.preprocess(p, p.height, p.width, resize_mode="crop") for p in made]
    assert len(seen) == 10 and all(torch.allclose(t, e, atol=1e-5) for t, e in zip(seen, expected, strict=True))
    assert result.data[0].parameters.references == 9
    with pytest.raises(BadRequest) as caught:
        dev.plan_edit(request, png_of(made[0]), None, extra_images=[png_of(p) for p in made])
    assert (caught.value.param, caught.value.message) == (
        "image",
        "model 'flux2' (flux2) reads at most 10 pictures in one edit, the edited one first; got 11",
    )


def test_a_masked_edit_is_an_instruction_edit_of_the_whole_picture(dev: Engine) -> None:
    plan = dev.plan_edit(EditRequest(prompt="the fox in a hat", mask_prompt="the fox", seed=3), png_of(
        pictures((64, 64))[0]), None)  # fmt: skip
    assert (plan.mode, plan.strength) == ("instruct", None)  # [dev] has no inpaint pipeline


def templated(pipe: Any, text: str) -> list[int]:
    """The token ids diffusers gives Mistral for `text`: FLUX.2's system message, then the prompt."""
    messages = [
        {"role": "system", "content": [{"type": "text", "text": pipe.system_message}]},
        {"role": "user", "content": [{"type": "text", "text": text}]},
    ]
    return list(pipe.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def test_every_token_up_to_the_limit_reaches_mistral_and_one_more_is_a_clear_400(dev: Engine) -> None:
    pipe = dev._pipe("flux2", "generate")
    frame = len(templated(pipe, ""))
    room = 512 - frame
    longest = "a" * room  # one byte, one token
    _, seen = keyword_inputs(pipe.text_encoder, lambda: dev.render(dev.plan(GenerationRequest(prompt=longest, seed=1))))
    expected = templated(pipe, longest)
    assert len(expected) == 512
    assert [int(t) for t in seen[0]["input_ids"][0]] == expected  # the whole templated prompt, in order, none cut
    (outcome,) = dev.run_batch([as_job(dev.plan(GenerationRequest(prompt=longest + "z")), "long")], lambda j, e: None)
    assert isinstance(outcome, BadRequest) and (outcome.param, outcome.message) == (
        "prompt",
        f"the prompt is {room + 1} tokens long; this flux2 model reads at most {room} (its Mistral limit): shorten it",
    )


def test_usage_counts_the_prompt_with_a_processors_own_tokenizer(dev: Engine) -> None:
    pipe = dev._pipe("flux2", "generate")

    class PixtralLike:
        """The real model's "tokenizer" is a processor whose first argument is images."""

        tokenizer = pipe.tokenizer

        def __call__(self, images: object = None, text: object = None, **_: object) -> object:
            raise AssertionError("a processor takes images first")

    assert Flux2().text_tokens(SimpleNamespace(tokenizer=PixtralLike()), "a fox") == 5  # one byte, one token
    assert dev.render(dev.plan(GenerationRequest(prompt="a fox", seed=1))).usage.input_tokens_details.text_tokens == 5  # type: ignore[union-attr]
