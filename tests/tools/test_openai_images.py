"""egaku on OpenAI's own Images API, against a fake that answers exactly as OpenAI documents."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from egaku.config import OpenAIBackendSettings
from egaku.errors import EditNotPossible, WorkerBusy, WorkerFailed, WorkerRejected, WorkerUnavailable
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.openai_images import FakeOpenAIImages
from tools.backends.base import ImageEdit, ImageUpscale
from tools.backends.openai_images import NO_OUTPAINTING, NO_UPSCALER, OpenAIImages, alpha_mask, nearest_size
from tools.backends.worker_client import WorkerClient
from worker.protocol import EditRequest, GenerationRequest, ProgressEvent, UpscaleRequest


@pytest.fixture
async def images_api() -> AsyncIterator[FakeOpenAIImages]:
    """The strict fake of OpenAI's Images API."""
    fake = FakeOpenAIImages()
    await fake.start()
    yield fake
    await fake.stop()


def backend(session: aiohttp.ClientSession, fake: FakeOpenAIImages, model: str, **settings: object) -> OpenAIImages:
    """The OpenAI backend pointed at the fake."""
    chosen = OpenAIBackendSettings.model_validate({"base_url": fake.url, "model": model, **settings})
    return OpenAIImages(session, chosen, fake.api_key)


def png(size: tuple[int, int], colour: str = "orange") -> bytes:
    """PNG bytes of a flat picture."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_the_fake_refuses_egaku_only_parameters_as_openai_does(images_api: FakeOpenAIImages) -> None:
    """An egaku worker request sent as-is would leak `seed` and `aspect`: OpenAI says 'Unknown parameter'."""
    async with aiohttp.ClientSession() as session:
        client = WorkerClient(session, images_api.url.removesuffix("/v1"), token=images_api.api_key)
        with pytest.raises(WorkerRejected, match="Unknown parameter: 'aspect'"):
            await client.generate(GenerationRequest(prompt="a fox", seed=1, aspect="3:2"))


async def test_a_generation_sends_only_documented_fields_mapped_from_egakus(images_api: FakeOpenAIImages) -> None:
    request = GenerationRequest(
        prompt="a fox", negative_prompt="blurry", style="watercolor", aspect="3:2", seed=5, steps=30, guidance=7.0,
        n=2, user="u1", job_id="job-1", safety_check=True,
    )  # fmt: skip
    events: list[ProgressEvent] = []

    async def progress(event: ProgressEvent) -> None:
        events.append(event)

    async with aiohttp.ClientSession() as session:
        images = await backend(session, images_api, "gpt-image-1", quality="high", moderation="low").generate(
            request, progress
        )
    (seen,) = images_api.seen
    assert (seen.path, seen.fields) == (
        "/images/generations",
        {
            "model": "gpt-image-1",
            "prompt": "a fox, watercolour painting, soft washes, paper texture, delicate edges. "
            "Avoid: blurry, photo, 3d render",
            "size": "1536x1024",
            "n": 2,
            "quality": "high",
            "moderation": "low",
            "safety_identifier": hashlib.sha256(b"u1").hexdigest()[:32],
        },
    )
    assert [(i.width, i.height, i.seed, i.model, i.steps) for i in images] == [
        (1536, 1024, 5, "gpt-image-1", 0), (1536, 1024, 6, "gpt-image-1", 0),
    ]  # fmt: skip
    assert Image.open(io.BytesIO(images[0].png)).format == "PNG"
    assert images[0].prompt == seen.fields["prompt"] and images[0].user_words == ""  # the service gives it the words
    assert [(e.kind, e.job_id, e.batch_size) for e in events] == [("started", "job-1", 2)]


async def test_progress_is_openais_stream_with_partial_images_as_previews(images_api: FakeOpenAIImages) -> None:
    events: list[ProgressEvent] = []

    async def progress(event: ProgressEvent) -> None:
        events.append(event)

    async with aiohttp.ClientSession() as session:
        api = backend(session, images_api, "gpt-image-1")
        (drawn,) = await api.generate(GenerationRequest(prompt="a fox", job_id="j1"), progress)
        (edited,) = await api.edit(ImageEdit(EditRequest(prompt="a fox at night"), png((32, 32))), progress)
        await backend(session, images_api, "dall-e-3").generate(GenerationRequest(prompt="a fox"), progress)
    generation, edit, dalle = images_api.seen
    assert generation.fields == {
        "model": "gpt-image-1", "prompt": "a fox", "size": "1024x1024", "stream": True, "partial_images": 2,
    }  # fmt: skip
    assert (edit.fields["stream"], edit.fields["partial_images"]) == ("true", "2")
    assert "stream" not in dalle.fields  # DALL-E does not stream
    kinds = [e.kind for e in events]
    assert kinds == ["started", "preview", "preview", "started", "preview", "preview", "started"]
    preview = Image.open(io.BytesIO(base64.b64decode(events[1].b64_png or "")))
    assert preview.size == (256, 256)  # shrunk for the status message
    assert Image.open(io.BytesIO(drawn.png)).getpixel((0, 0)) == (200, 90, 160)  # the completed image, not a partial
    assert (edited.width, edited.height) == (1024, 1024)


async def test_dall_e_3_gets_one_image_per_call_b64_and_its_revised_prompt(images_api: FakeOpenAIImages) -> None:
    async with aiohttp.ClientSession() as session:
        images = await backend(session, images_api, "dall-e-3").generate(
            GenerationRequest(prompt="a fox", n=2, size="64x128")
        )
    assert [s.fields for s in images_api.seen] == [
        {"model": "dall-e-3", "prompt": "a fox", "size": "1024x1792", "response_format": "b64_json"}
    ] * 2
    assert [(i.prompt, i.width, i.height) for i in images] == [("Revised: a fox", 1024, 1792)] * 2


async def test_an_edit_sends_the_picture_prompt_and_an_alpha_mask(images_api: FakeOpenAIImages) -> None:
    grey = Image.new("L", (32, 32), 0)
    grey.paste(255, (0, 0, 16, 32))  # egaku: white = paint
    buffer = io.BytesIO()
    grey.save(buffer, format="PNG")
    request = EditRequest(prompt="a queen", strength=0.9, mask_prompt="the king", seed=3)
    async with aiohttp.ClientSession() as session:
        api = backend(session, images_api, "gpt-image-1")
        (image,) = await api.edit(ImageEdit(request, png((32, 32)), mask=buffer.getvalue()))
        with pytest.raises(WorkerRejected, match="dall-e-3 cannot edit"):
            await backend(session, images_api, "dall-e-3").edit(ImageEdit(request, png((32, 32))))
    (seen,) = images_api.seen
    assert seen.path == "/images/edits"
    assert seen.fields == {"model": "gpt-image-1", "prompt": "a queen", "size": "1024x1024", "n": "1"}
    assert seen.files["image"] == png((32, 32))
    mask = Image.open(io.BytesIO(seen.files["mask"]))
    assert mask.mode == "RGBA"
    assert mask.getchannel("A").crop((0, 0, 16, 32)).getextrema() == (0, 0)  # transparent: paint
    assert mask.getchannel("A").crop((16, 0, 32, 32)).getextrema() == (255, 255)
    assert (image.width, image.height, image.seed) == (1024, 1024, 3)


@pytest.mark.parametrize(
    ("status", "message", "code", "error"),
    [
        (429, "Rate limit reached for images per minute", "rate_limit_exceeded", WorkerBusy),
        (400, "Your request was rejected by the safety system.", "content_policy_violation", WorkerRejected),
        (500, "The server had an error processing your request.", None, WorkerFailed),
        (503, "The engine is currently overloaded.", None, WorkerBusy),
    ],
)
async def test_openai_errors_become_egakus(
    images_api: FakeOpenAIImages, status: int, message: str, code: str | None, error: type[Exception]
) -> None:
    images_api.fail_next.append((status, message, code))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(error, match=message[:20]):
            await backend(session, images_api, "gpt-image-1").generate(GenerationRequest(prompt="a fox"))


async def test_a_wrong_key_an_unreachable_api_and_unsupported_asks(images_api: FakeOpenAIImages) -> None:
    async with aiohttp.ClientSession() as session:
        wrong = OpenAIImages(session, OpenAIBackendSettings(base_url=images_api.url), "sk-wrong")
        with pytest.raises(WorkerFailed, match="Incorrect API key"):
            await wrong.generate(GenerationRequest(prompt="a fox"))
        gone = OpenAIImages(session, OpenAIBackendSettings(base_url="http://127.0.0.1:9/v1"), "k")
        with pytest.raises(WorkerUnavailable):
            await gone.generate(GenerationRequest(prompt="a fox"))
        api = backend(session, images_api, "gpt-image-1")
        assert (await api.health()).models == ["gpt-image-1"]
        assert await api.cancel("job-1") is False
        with pytest.raises(WorkerRejected, match="egaku's own worker"):
            await api.describe(png((8, 8)))
        seen = len(images_api.seen)
        with pytest.raises(WorkerRejected, match="best-of needs egaku's own worker"):
            await api.generate(GenerationRequest(prompt="a fox", best_of=2))
    assert len(images_api.seen) == seen  # refused before any call


def test_sizes_follow_the_shape_asked_for() -> None:
    assert nearest_size("gpt-image-1", GenerationRequest(prompt="x", aspect="9:16")) == "1024x1536"
    assert nearest_size("dall-e-3", GenerationRequest(prompt="x", aspect="16:9")) == "1792x1024"
    assert nearest_size("dall-e-2", GenerationRequest(prompt="x", size="256x256")) == "256x256"
    assert nearest_size("gpt-image-1", GenerationRequest(prompt="x")) == "1024x1024"
    mask = Image.open(io.BytesIO(alpha_mask(png((4, 4), "white"))))
    assert mask.getchannel("A").getextrema() == (0, 0)


async def test_egaku_chat_draws_through_openai_images(
    tmp_path: Path, worker_cache: Path, fake_openai: FakeOpenAI, images_api: FakeOpenAIImages
) -> None:
    """`egaku chat` with `[backend] mode = "openai"`: the agent's drawing comes from OpenAI's Images API."""
    from tests.egaku.test_cli import config_text, egaku

    fake_openai.then(Call("generate_image", {"prompt": "a red fox in snow", "aspect": "16:9"}), Say("Here it is."))
    text = (
        config_text(tmp_path, worker_cache, llm=fake_openai)
        .replace('mode = "embedded"', 'mode = "openai"')
        .replace('base_url = "https://api.openai.com/v1"', f'base_url = "{images_api.url}"')
        .replace('api_key_env = "OPENAI_API_KEY"', 'api_key_env = "FAKE_IMAGES_KEY"')
        .replace('model = "gpt-image-1"', 'model = "dall-e-3"')
    )
    path = tmp_path / "egaku.toml"
    path.write_text(text, encoding="utf-8")
    env = {"FAKE_OPENAI_KEY": "sk-fake", "FAKE_IMAGES_KEY": images_api.api_key}
    code, out, err = await egaku("chat", "--config", str(path), env=env, stdin=b"draw a red fox\n")
    assert code == 0, err[-3000:]
    (seen,) = images_api.seen
    fields = dict(seen.fields)
    assert re.fullmatch(r"[0-9a-f]{32}", fields.pop("safety_identifier"))  # the user's id, hashed
    assert fields == {
        "model": "dall-e-3",
        "prompt": "a red fox in snow",
        "size": "1792x1024",
        "response_format": "b64_json",
        "n": 1,
    }
    (line,) = [line.strip() for line in out.splitlines() if line.strip().startswith("image: ")]
    assert Image.open(line.removeprefix("image: ")).size == (1792, 1024)
    assert "Revised: a red fox in snow" in out


async def test_zoom_pan_and_the_upscaler_are_refused_in_words_never_sent_as_a_plain_edit(
    images_api: FakeOpenAIImages,
) -> None:
    async with aiohttp.ClientSession() as session:
        api = backend(session, images_api, "gpt-image-1")
        refusals = []
        for outpaint in ({"zoom": 1.5}, {"pan": "left"}):
            request = EditRequest.model_validate({"prompt": "a fox", **outpaint})
            with pytest.raises(EditNotPossible) as refused:
                await api.edit(ImageEdit(request, png((64, 64))))
            refusals.append(refused.value.text)
        with pytest.raises(EditNotPossible) as no_upscaler:
            await api.upscale(ImageUpscale(UpscaleRequest(scale=2), png((64, 64))))
        assert await api.upscaler() is None  # the plain upscale buttons fall back to the creative one
    assert refusals == [NO_OUTPAINTING] * 2
    assert str(NO_OUTPAINTING) == (
        "Zoom out and pan need egaku's own worker: this bot draws with OpenAI's Images API, "
        "which cannot paint past a picture's edges."
    )
    assert no_upscaler.value.text == NO_UPSCALER
    assert images_api.seen == []  # nothing went to OpenAI


async def test_an_edit_sends_every_picture_in_order_and_a_new_picture_from_pictures_is_refused(
    images_api: FakeOpenAIImages,
) -> None:
    pictures = [png((32, 32), "orange"), png((32, 32), "teal"), png((32, 32), "navy")]
    request = EditRequest(prompt="the cat from picture 2 in the hat from picture 3, in picture 1")
    async with aiohttp.ClientSession() as session:
        api = backend(session, images_api, "gpt-image-1")
        (image,) = await api.edit(ImageEdit(request, pictures[0], references=tuple(pictures[1:])))
        seen = len(images_api.seen)
        with pytest.raises(WorkerRejected, match="dall-e-2 edits one picture at a time"):
            await backend(session, images_api, "dall-e-2").edit(
                ImageEdit(request, pictures[0], references=(pictures[1],))
            )
        with pytest.raises(WorkerRejected, match="a new picture drawn from pictures needs egaku's own worker"):
            await api.generate(GenerationRequest(prompt="blend them", references=["aGk="]))
    assert images_api.seen[0].pictures == pictures  # gpt-image reads them all, in order, as `image[]`
    assert images_api.seen[0].fields["prompt"] == request.prompt and image.png.startswith(b"\x89PNG")
    assert len(images_api.seen) == seen  # both refused before any call
