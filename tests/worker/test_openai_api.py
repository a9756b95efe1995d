"""The worker as OpenAI's Images API: the official client, sync and async, streaming included, no extra_body."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import openai
import pytest
from PIL import Image, ImageChops

from tests.conftest import serve, tiny_worker_settings
from tests.worker.test_server import engine_failing_with
from worker.engine import Engine
from worker.http import WorkerServer
from worker.protocol import image_tokens

TOKEN = "worker-secret"


@dataclass
class Served:
    """A token-protected worker and both official clients pointed at it."""

    url: str
    server: WorkerServer
    sync: openai.OpenAI
    client: openai.AsyncOpenAI


@pytest.fixture(scope="module")
def aliased(worker_cache: Path) -> Engine:
    """A real Engine over the tiny pipeline whose config aliases `dall-e-3` to tiny-alt."""
    engine = Engine(tiny_worker_settings(worker_cache, aliases={"dall-e-3": "tiny-alt"}))
    engine.load()
    return engine


@pytest.fixture
async def served(aliased: Engine, worker_cache: Path) -> AsyncIterator[Served]:
    """The real worker (tiny pipeline) behind a bearer token, with `dall-e-3` aliased to tiny-alt."""
    settings = tiny_worker_settings(worker_cache, aliases={"dall-e-3": "tiny-alt"})
    server = WorkerServer(aliased, settings, token=TOKEN)
    runner, url = await serve(server.app())
    async with aiohttp.ClientSession() as session:
        while (await (await session.get(url + "/healthz")).json())["status"] != "ok":
            await asyncio.sleep(0.02)
    sync = openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0)
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0)
    yield Served(url, server, sync, client)
    await client.close()
    sync.close()
    await runner.cleanup()


def png(image: Image.Image) -> bytes:
    """PNG bytes of a picture."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(b64: str | None) -> Image.Image:
    """A picture from base64."""
    assert b64
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def noise(size: int = 64, seed: int = 3) -> Image.Image:
    """A busy RGB picture, so that any repaint shows."""
    return Image.effect_noise((size, size), 80).convert("RGB").rotate(seed * 7)


async def fetch(url: str) -> tuple[int, str, bytes]:
    """GET a link with no Authorization header, as a browser would."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_dall_e_3_defaults_to_a_signed_url_that_needs_no_token(served: Served) -> None:
    result = await served.client.images.generate(model="dall-e-3", prompt="a red fox", size="64x64", quality="hd")
    item = result.data[0] if result.data else None
    assert item is not None and item.b64_json is None and item.url
    assert item.revised_prompt == "a red fox"
    status, kind, body = await fetch(item.url)
    assert (status, kind) == (200, "image/png")
    assert Image.open(io.BytesIO(body)).size == (64, 64)
    # dall-e-3 is tiny-alt (3 steps); hd is 1.5 times the preset's steps.
    assert item.model_extra is not None and item.model_extra["parameters"]["model"] == "tiny-alt"
    assert item.model_extra["parameters"]["steps"] == 5
    assert (result.size, result.quality, result.background, result.output_format) == ("64x64", "high", "opaque", "png")
    # A forged or altered link is refused, in JSON.
    status, kind, body = await fetch(item.url.replace("sig=", "sig=0"))
    assert (status, kind.split(";")[0]) == (404, "application/json")
    # The files go when the worker stops.
    assert len(served.server.files.files) == 1


async def test_every_documented_generation_parameter_is_accepted_and_mapped(served: Served) -> None:
    result = await served.client.images.generate(
        prompt="a lighthouse at dusk",
        model="gpt-image-1",
        n=2,
        size="auto",
        quality="low",
        style="vivid",
        background="opaque",
        moderation="low",
        output_format="webp",
        output_compression=40,
        complexity="low",
        response_format="b64_json",
        user="someone",
        safety_identifier="hashed-user",
    )
    assert result.data is not None and len(result.data) == 2
    first = result.data[0]
    picture = decoded(first.b64_json)
    assert (picture.format, picture.size) == ("WEBP", (64, 64))  # size=auto: the preset's size
    used = (first.model_extra or {})["parameters"]
    assert (used["model"], used["steps"], used["style"]) == ("tiny", 1, "vivid")  # low halves 2 steps
    assert "vivid saturated colours" in (first.revised_prompt or "")
    assert (result.output_format, result.quality, result.safety_identifier) == ("webp", "low", "hashed-user")
    assert result.usage is not None
    assert result.usage.output_tokens == 2 * image_tokens(64, 64) == 32
    assert result.usage.input_tokens_details.image_tokens == 0
    assert result.usage.input_tokens_details.text_tokens > 0
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


async def test_url_links_expire_and_are_swept(served: Served) -> None:
    result = await served.client.images.generate(prompt="a fox", response_format="url")
    assert result.data and result.data[0].url
    store = served.server.files
    assert len(store.files) == 1
    assert store.sweep() == 0
    # The store's clock decides expiry; move it past the link's lifetime.
    store._clock = lambda: 10**12  # type: ignore[method-assign]
    status, _, _ = await fetch(result.data[0].url)
    assert status == 404
    assert store.sweep() == 1 and store.files == []


@pytest.mark.parametrize(
    ("kwargs", "param", "words"),
    [
        ({"background": "transparent"}, "background", "cannot make transparent backgrounds"),
        ({"output_format": "gif"}, "output_format", "gif output is not supported"),
        ({"output_format": "svg"}, "output_format", "svg output is not supported"),
        ({"model": "gpt-9"}, "model", "unknown model 'gpt-9'"),
        ({"n": 10}, "n", "less than or equal to 4"),
    ],
)
async def test_what_cannot_be_done_is_refused_clearly(served: Served, kwargs: dict, param: str, words: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await served.client.images.generate(prompt="a fox", **kwargs)
    assert caught.value.param == param
    assert words in caught.value.message


def _stream_sync(client: openai.OpenAI) -> list[object]:
    return list(client.images.generate(prompt="a fox", stream=True, partial_images=2, quality="high"))


async def test_generation_streams_openai_events_sync_and_async(served: Served) -> None:
    for events in (
        await asyncio.to_thread(_stream_sync, served.sync),
        [e async for e in await served.client.images.generate(
            prompt="a fox", stream=True, partial_images=2, quality="high"
        )],
    ):  # fmt: skip
        kinds = [e.type for e in events]  # type: ignore[attr-defined]
        assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
        partials = events[:2]
        assert [p.partial_image_index for p in partials] == [0, 1]  # type: ignore[attr-defined]
        assert decoded(partials[0].b64_json).size == (64, 64)  # type: ignore[attr-defined]
        done = events[-1]
        assert decoded(done.b64_json).size == (64, 64)  # type: ignore[attr-defined]
        assert (done.size, done.quality, done.output_format) == ("64x64", "high", "png")  # type: ignore[attr-defined]
        assert done.usage.output_tokens == 16  # type: ignore[attr-defined]


async def test_a_stream_error_reaches_the_official_client_as_an_api_error(worker_cache: Path) -> None:
    engine = engine_failing_with(worker_cache, RuntimeError("secret detail"))
    server = WorkerServer(engine, tiny_worker_settings(worker_cache), token=None)
    runner, url = await serve(server.app())
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    try:
        stream = await client.images.generate(prompt="a fox", stream=True, partial_images=1)
        with pytest.raises(openai.APIError) as caught:
            _ = [e async for e in stream]
        assert caught.value.message.startswith("internal error (id ")
        assert "secret" not in caught.value.message
    finally:
        await client.close()
        await runner.cleanup()


async def test_edit_with_an_openai_alpha_mask_repaints_exactly_the_transparent_region(served: Served) -> None:
    original = noise()
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))  # alpha 0: paint here
    result = await served.client.images.edit(
        image=("in.png", png(original), "image/png"),
        mask=("mask.png", png(mask), "image/png"),
        prompt="a glowing orb",
        size="64x64",
    )
    assert result.data and (result.data[0].model_extra or {})["parameters"]["mode"] == "inpaint"
    out = decoded(result.data[0].b64_json).convert("RGB")
    diff = ImageChops.difference(out, original).convert("L")
    inside = diff.crop((16, 16, 48, 48))
    outside = diff.copy()
    outside.paste(0, (16, 16, 48, 48))
    assert outside.getextrema() == (0, 0)  # every pixel outside the transparent square is the original's
    changed = sum(1 for value in inside.getdata() if value > 8)
    assert changed > 0.9 * 32 * 32  # and the square was repainted
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens == image_tokens(64, 64)


async def test_edit_without_a_mask_paints_where_the_image_is_transparent(served: Served) -> None:
    original = noise().convert("RGBA")
    original.paste((0, 0, 0, 0), (0, 0, 32, 64))  # the left half is transparent
    result = await served.client.images.edit(image=("in.png", png(original), "image/png"), prompt="a moonlit sky")
    assert result.data
    out = decoded(result.data[0].b64_json).convert("RGB")
    diff = ImageChops.difference(out, original.convert("RGB")).convert("L")
    assert diff.crop((32, 0, 64, 64)).getextrema() == (0, 0)  # the opaque half is kept exactly
    assert diff.crop((0, 0, 32, 64)).getextrema()[1] > 8


async def test_egaku_greyscale_masks_only_when_asked_for(served: Served) -> None:
    original = noise()
    grey = Image.new("L", (64, 64), 0)
    grey.paste(255, (0, 0, 32, 32))  # white: paint here (egaku's own client)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        form = aiohttp.FormData()
        form.add_field("image", png(original), filename="i.png", content_type="image/png")
        form.add_field("mask", png(grey), filename="m.png", content_type="image/png")
        form.add_field("prompt", "a cat")
        async with session.post(served.url + "/v1/images/edits", data=form) as resp:
            refused = await resp.json()
        assert resp.status == 400 and refused["error"]["param"] == "mask"
        assert "alpha channel" in refused["error"]["message"]
        form = aiohttp.FormData()
        form.add_field("image", png(original), filename="i.png", content_type="image/png")
        form.add_field("mask", png(grey), filename="m.png", content_type="image/png")
        form.add_field("prompt", "a cat")
        form.add_field("mask_format", "luminance")
        async with session.post(served.url + "/v1/images/edits", data=form) as resp:
            body = await resp.json()
        assert resp.status == 200, body
    out = decoded(body["data"][0]["b64_json"]).convert("RGB")
    diff = ImageChops.difference(out, original).convert("L")
    assert diff.crop((32, 0, 64, 64)).getextrema() == (0, 0)
    assert diff.crop((0, 32, 32, 64)).getextrema() == (0, 0)
    assert diff.crop((0, 0, 32, 32)).getextrema()[1] > 8


def _edit_sync(client: openai.OpenAI, picture: bytes) -> list[object]:
    plain = client.images.edit(image=("in.png", picture, "image/png"), prompt="as a watercolour", n=2)
    streamed = list(
        client.images.edit(
            image=[("in.png", picture, "image/png")], prompt="as ink", stream=True, partial_images=1, quality="max"
        )
    )
    return [plain, streamed]


async def test_edits_sync_and_async_plain_listed_and_streamed(served: Served) -> None:
    picture = png(noise())
    plain, streamed = await asyncio.to_thread(_edit_sync, served.sync, picture)
    assert len(plain.data) == 2  # type: ignore[attr-defined]
    assert [e.type for e in streamed] == ["image_edit.partial_image", "image_edit.completed"]  # type: ignore[attr-defined]
    stream = await served.client.images.edit(
        image=("in.png", picture, "image/png"), prompt="as ink", stream=True, partial_images=1, quality="max"
    )
    assert [e.type async for e in stream] == ["image_edit.partial_image", "image_edit.completed"]
    result = await served.client.images.edit(
        image=("in.png", picture, "image/png"), prompt="as ink", input_fidelity="high", response_format="url"
    )
    assert result.data and result.data[0].url and (await fetch(result.data[0].url))[0] == 200


async def test_edits_need_a_prompt_and_say_how_many_images_a_model_takes(served: Served) -> None:
    picture = ("in.png", png(noise()), "image/png")
    with pytest.raises(openai.BadRequestError) as caught:
        await served.client.images.edit(image=picture, prompt="")
    assert caught.value.param == "prompt"
    with pytest.raises(openai.BadRequestError) as caught:
        await served.client.images.edit(image=[picture, picture], prompt="merge them")
    assert caught.value.param == "image"
    limit = "model 'tiny' (sdxl) reads at most 1 picture in one edit, the edited one first; got 2"
    assert limit in caught.value.message


async def test_variations_sync_and_async(served: Served) -> None:
    picture = ("in.png", png(noise()), "image/png")
    result = await served.client.images.create_variation(image=picture, n=1, size="64x64")
    assert result.data and (result.data[0].model_extra or {})["parameters"]["mode"] == "img2img"
    linked = await asyncio.to_thread(
        lambda: served.sync.images.create_variation(image=picture, model="dall-e-2", user="u")
    )
    assert linked.data and linked.data[0].url and linked.data[0].b64_json is None


async def test_models_list_and_retrieve_sync_and_async(served: Served) -> None:
    names = [m.id async for m in await served.client.models.list()]
    assert {"tiny", "tiny-alt", "dall-e-3", "gpt-image-1"} <= set(names)
    assert (await served.client.models.retrieve("dall-e-3")).id == "dall-e-3"
    retrieved = await asyncio.to_thread(served.sync.models.retrieve, "tiny")
    assert (retrieved.id, retrieved.object, retrieved.owned_by) == ("tiny", "model", "egaku")
    with pytest.raises(openai.NotFoundError) as caught:
        await served.client.models.retrieve("nope")
    assert caught.value.code == "model_not_found"


async def test_every_route_and_method_answers_json(served: Served) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(served.url + "/v1/nope") as resp:
            assert (resp.status, resp.content_type) == (404, "application/json")
            assert (await resp.json())["error"] == {
                "message": "no route GET /v1/nope", "type": "invalid_request_error", "code": "not_found", "param": None,
            }  # fmt: skip
        async with session.get(served.url + "/v1/images/generations") as resp:
            assert (resp.status, resp.content_type, resp.headers["Allow"]) == (405, "application/json", "POST")
            assert (await resp.json())["error"]["code"] == "method_not_allowed"
        async with session.put(served.url + "/v1/models") as resp:
            assert (resp.status, resp.content_type) == (405, "application/json")
    async with aiohttp.ClientSession() as session, session.get(served.url + "/v1/models") as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (401, "invalid_api_key")


async def test_langchain_dalle_wrapper_works_against_the_worker(served: Served) -> None:
    from langchain_community.utilities.dalle_image_generator import DallEAPIWrapper

    wrapper = DallEAPIWrapper(
        model="dall-e-3", api_key=TOKEN, base_url=served.url + "/v1", size="64x64", quality="standard", max_retries=0
    )
    url = await asyncio.to_thread(wrapper.run, "a squirrel king")
    assert url.startswith(served.url + "/v1/images/files/")
    status, kind, body = await fetch(url)
    assert (status, kind) == (200, "image/png") and Image.open(io.BytesIO(body)).size == (64, 64)
