"""Several pictures in, end to end: fake Discord, scripted LLM, and a real worker serving the tiny SDXL presets and a
tiny Qwen-Image-Edit Plus preset ("plus", the configured reference model) behind a recorder.

Each test asserts what the worker received (every picture, in order, and the whole new description), what the
model was shown, and the lineage the history keeps.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import torch
from langchain_core.messages import ToolMessage
from PIL import Image

from agent.prompts import REFERENCE_NOTE
from egaku.config import Config, PicturesRead
from tests.bot.test_buttons import callback_of, custom_ids
from tests.bot.test_conversation import KING, linked, live, say, sha
from tests.bot.test_references import ALICE, BOB, NOT_HERE, say_in, tool_answer
from tests.conftest import tiny_worker_settings
from tests.fakes.discord import BOT_ID, CHANNEL_ID, OTHER_CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import Received, RecordingWorker
from tests.fakes.serving import serving_worker
from tests.worker.families.conftest import encoded_images, png_of
from tests.worker.families.test_qwen_image_edit_plus import capped_plus, vae_input
from tools.pictures import Parent
from tools.service.references import APPROXIMATE_NOTE, APPROXIMATE_TEXT
from worker.engine import Engine

CAT_IN = (
    "The regal red squirrel king from picture 1 on his mossy tree-stump throne, with the small teal cat from "
    "picture 2 curled up at his feet, autumn forest, warm light, storybook illustration"
)
HAT_ON = (
    "The regal red squirrel king from picture 1 wearing the straw hat from picture 2 and the striped scarf from "
    "picture 3, on his mossy throne in an autumn forest, warm light"
)
RIDING = "The same regal red squirrel king with his tiny golden crown, now riding a brown horse through autumn woods"


def photo(colour: str, size: tuple[int, int] = (64, 64)) -> bytes:
    """A picture a user attaches: one colour, with a white mark so that no two are alike."""
    picture = Image.new("RGB", size, colour)
    picture.paste(Image.new("RGB", (12, 12), "white"), (8, 8))
    return png_of(picture)


def pixels_of(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


@pytest.fixture(scope="module")
def plus_engine(worker_cache: Path) -> Iterator[Engine]:
    """The tiny presets and "plus", loaded once for the module, Qwen's resizing capped meanwhile."""
    with capped_plus(worker_cache, default="tiny", **tiny_worker_settings(worker_cache).models) as engine:
        engine.load("plus")
        yield engine


@pytest.fixture
async def plus_worker(plus_engine: Engine) -> AsyncIterator[RecordingWorker]:
    """The worker over that engine, behind a recorder."""
    async with serving_worker(plus_engine, plus_engine._settings) as url:
        recorder = RecordingWorker(url)
        await recorder.start()
        try:
            yield recorder
        finally:
            await recorder.stop()


def with_plus(config: Config, engine: Engine) -> Config:
    """The test config over the worker's presets: "plus" becomes the reference model by itself."""
    return Config.model_validate({**config.model_dump(), "worker": engine._settings.model_dump()})


def message_with(fake: FakeDiscord, content: str) -> int:
    """The id of the bot's message with this text."""
    return int(next(m for m in fake.messages.values() if m["content"] == content)["id"])


def edits(recorder: RecordingWorker) -> list[Received]:
    return [r for r in recorder.received if r.path == "/v1/images/edits"]


async def test_the_cat_from_my_upload_goes_into_the_picture_you_drew_in_order_and_the_lineage_survives_a_restart(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    config = with_plus(app_config, plus_engine)
    assert (config.agent.reference_model, config.reference_pictures()) == ("plus", PicturesRead(edit=3, draw=3))
    cat = fake_discord.attachment(photo("teal"), "cat.png")
    pipe = plus_engine._pipe("plus", "instruct")
    fake_openai.then(Call("generate_image", {"prompt": KING, "seed": 7, "reply": "The squirrel king!"}))
    async with live(config, fake_openai, plus_worker, fake_discord) as app:
        drawn_post = await say(fake_discord, f"<@{BOT_ID}> draw the squirrel king")
        (drawn,) = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        fake_openai.then(Call("edit_image", {"ref": drawn.id, "references": ["last"], "prompt": CAT_IN,
                                             "reply": "The cat is with the king."}))  # fmt: skip
        seen, hook = encoded_images(pipe)
        try:
            answer = await say(fake_discord, f"<@{BOT_ID}> put the cat from my upload into the picture you drew",
                               attachments=[cat])  # fmt: skip
        finally:
            hook.remove()  # type: ignore[attr-defined]
        _, upload, made = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        upload_png = app.history.png(upload)
    # A new process: the lineage is read back from the history, and "Show prompt" lists it.
    async with live(config, fake_openai, plus_worker, fake_discord) as app:
        kept = await app.history.get(made.id)
        message = int(
            next(m for m in fake_discord.messages.values() if m["content"] == "The cat is with the king.")["id"]
        )
        press = await fake_discord.press(f"egaku:prompt:{made.id}", message)
        shown = await fake_discord.wait_for_request(callback_of(press))

    (edit,) = edits(plus_worker)
    # Both pictures reached the Qwen-Image-Edit Plus preset in order, the picture drawn first, with the whole
    # new description, the drawn picture's seed and size.
    assert edit.parts == [("image[]", sha(drawn_post.files[0].data)), ("image[]", sha(upload_png))]
    assert {k: edit.fields[k] for k in ("prompt", "model", "seed", "size")} == {
        "prompt": CAT_IN, "model": "plus", "seed": "7", "size": "64x64",
    }  # fmt: skip
    assert "strength" not in edit.fields and "mask_prompt" not in edit.fields
    used = edit.answer["data"][0]["parameters"]
    assert (used["mode"], used["model"], used["references"]) == ("instruct", "plus", 1)
    # ...and the model's own VAE encoded exactly those pixels, in that order.
    expected = [vae_input(pipe, pixels_of(png)) for png in (drawn_post.files[0].data, upload_png)]
    assert len(seen) == 2 and all(torch.allclose(t, e, atol=1e-5) for t, e in zip(seen, expected, strict=True))
    # The model saw the upload's caption and id, and was told reference edits exist, before writing the edit.
    (caption,) = [r.answer["prompt"] for r in plus_worker.received if r.path == "/v1/images/descriptions"]
    request = fake_openai.requests[1]
    assert request["messages"][-1]["content"].endswith(f"(attached image: id={upload.id})")
    system = request["messages"][0]["content"]
    assert REFERENCE_NOTE in system and f"id={upload.id} (upload): (uploaded image cat.png); it shows: {caption}" in (
        system
    )
    # The history keeps both parents, in order, with their roles; after the restart too.
    lineage = (Parent(drawn.id, "edited"), Parent(upload.id, "reference"))
    assert (made.kind, made.parent_id, made.parents, made.model) == ("reference", drawn.id, lineage, "plus")
    assert kept is not None and kept.parents == lineage
    assert answer.json["content"] == "The cat is with the king."
    assert shown.json["data"]["content"].endswith(
        f"**Made from:** picture 1 `{drawn.id}` (the picture edited) · picture 2 `{upload.id}` (a reference)"
    )


async def test_a_reply_carrying_two_attachments_puts_this_hat_and_scarf_on_him(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    hat, scarf = photo("khaki", (64, 48)), photo("crimson", (48, 64))
    attached = [fake_discord.attachment(hat, "hat.png"), fake_discord.attachment(scarf, "scarf.jpg", "image/png")]
    fake_openai.then(Call("generate_image", {"prompt": KING, "seed": 11, "reply": "The squirrel king!"}))
    async with live(with_plus(app_config, plus_engine), fake_openai, plus_worker, fake_discord) as app:
        drawn_post = await say(fake_discord, f"<@{BOT_ID}> draw the squirrel king")
        king = message_with(fake_discord, "The squirrel king!")
        await linked(app.history, king)
        fake_openai.then(Call("edit_image", {"ref": "reply", "references": ["second", "third"], "prompt": HAT_ON,
                                             "reply": "Dressed up!"}))  # fmt: skip
        await say(fake_discord, "put this hat and scarf on him", mention_bot=False, reply_to=king, attachments=attached)
        drawn, hat_upload, scarf_upload, made = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        pngs = [app.history.png(g) for g in (hat_upload, scarf_upload)]
    # Both attachments became uploads, in order, under the message that carried them.
    assert [(g.kind, g.width, g.height) for g in (hat_upload, scarf_upload)] == [("upload", 64, 48), ("upload", 48, 64)]
    assert hat_upload.message_id == scarf_upload.message_id is not None
    assert fake_openai.requests[1]["messages"][-1]["content"].endswith(
        f"(attached images, in order: id={hat_upload.id}, id={scarf_upload.id})"
    )
    # The replied-to picture and both uploads were captioned once each, before the model wrote the edit.
    described = [r.parts for r in plus_worker.received if r.path == "/v1/images/descriptions"]
    assert sorted(described) == sorted([[("image", sha(p))] for p in (*pngs, drawn_post.files[0].data)])
    (edit,) = edits(plus_worker)
    assert edit.parts == [("image[]", sha(drawn_post.files[0].data)), *(("image[]", sha(p)) for p in pngs)]
    assert (edit.fields["prompt"], edit.fields["model"], edit.fields["seed"]) == (HAT_ON, "plus", "11")
    assert made.parents == (
        Parent(drawn.id, "edited"), Parent(hat_upload.id, "reference"), Parent(scarf_upload.id, "reference"),
    )  # fmt: skip


async def test_a_reference_to_someone_elses_picture_from_another_channel_is_refused(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    fake_openai.then(Call("generate_image", {"prompt": KING, "seed": 7, "reply": "Here, Alice!"}))
    async with live(with_plus(app_config, plus_engine), fake_openai, plus_worker, fake_discord) as app:
        await say_in(fake_discord, CHANNEL_ID, f"<@{BOT_ID}> draw the squirrel king", ALICE)
        (alices,) = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        fake_openai.then(Call("generate_image", {"prompt": "a brown horse in a meadow", "reply": "Here, Bob!"}))
        await say_in(fake_discord, OTHER_CHANNEL_ID, f"<@{BOT_ID}> draw a horse", BOB)
        (bobs,) = await app.history.mine(f"discord:{OTHER_CHANNEL_ID}", str(BOB))
        for ref in (alices.id, "squirrel king"):
            fake_openai.then(Call("edit_image", {"ref": bobs.id, "references": [ref], "prompt": RIDING}),
                             Say("Which king do you mean?"))  # fmt: skip
            answer = await say_in(fake_discord, OTHER_CHANNEL_ID, f"<@{BOT_ID}> put the king {ref} on my horse", BOB)
            assert answer.json["content"] == "Which king do you mean?"
            assert tool_answer(fake_openai, len(fake_openai.requests) - 1) == NOT_HERE
        mine = await app.history.mine(f"discord:{OTHER_CHANNEL_ID}", str(BOB))
    assert edits(plus_worker) == [] and [g.id for g in mine] == [bobs.id]  # nothing reached the worker or was made


async def test_the_same_king_on_a_horse_without_a_reference_model_is_the_same_seed_and_says_so(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": KING, "seed": 5, "reply": "The squirrel king!"}))
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        await say(fake_discord, f"<@{BOT_ID}> draw the squirrel king")
        fake_openai.then(Call("edit_image", {"ref": "last", "mode": "reference", "prompt": RIDING,
                                             "reply": "Off he rides!"}))  # fmt: skip
        answer = await say(fake_discord, f"<@{BOT_ID}> the same squirrel king, now riding a horse")
        king, riding = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
        saved = await app.agent._graph.aget_state({"configurable": {"thread_id": f"discord:{CHANNEL_ID}"}})
    told = [m.content for m in saved.values["messages"] if isinstance(m, ToolMessage)][-1]
    assert app.agent.images.references is None
    assert REFERENCE_NOTE not in fake_openai.requests[1]["messages"][0]["content"]  # not offered without the model
    _, redrawn = recorder.received
    assert redrawn.path == "/v1/images/generations" and "references" not in redrawn.fields
    assert {k: redrawn.fields[k] for k in ("prompt", "seed", "model", "size")} == {
        "prompt": RIDING, "seed": 5, "model": "tiny", "size": "64x64",
    }  # fmt: skip
    assert answer.json["content"] == f"Off he rides!\n\n{APPROXIMATE_TEXT}"  # str() of the Text: its English
    assert told.endswith(f"and posted with your reply. {APPROXIMATE_NOTE} The user is told so with the picture.")
    assert (riding.kind, riding.parents) == ("regenerate", (Parent(king.id, "edited"),))
    assert custom_ids(answer)[0] == f"egaku:reroll:{riding.id}"


async def test_the_same_king_on_a_horse_is_drawn_from_the_earlier_picture_by_the_reference_model(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    pipe = plus_engine._pipe("plus", "instruct")
    fake_openai.then(Call("generate_image", {"prompt": KING, "seed": 9, "reply": "The squirrel king!"}))
    async with live(with_plus(app_config, plus_engine), fake_openai, plus_worker, fake_discord) as app:
        drawn_post = await say(fake_discord, f"<@{BOT_ID}> draw the squirrel king")
        fake_openai.then(Call("edit_image", {"ref": "last", "mode": "reference", "prompt": RIDING,
                                             "reply": "Off he rides!"}))  # fmt: skip
        seen, hook = encoded_images(pipe)
        try:
            answer = await say(fake_discord, f"<@{BOT_ID}> the same squirrel king, now riding a horse")
        finally:
            hook.remove()  # type: ignore[attr-defined]
        king, riding = await app.history.mine(f"discord:{CHANNEL_ID}", str(ALICE))
    # A new scene from the earlier picture as the one reference: a generation on the reference model, with the king's
    # seed and size, and no canvas.
    _, redrawn = [r for r in plus_worker.received if r.path == "/v1/images/generations"]
    assert [sha(base64.b64decode(r)) for r in redrawn.fields["references"]] == [sha(drawn_post.files[0].data)]
    assert {k: redrawn.fields[k] for k in ("prompt", "model", "seed", "size")} == {
        "prompt": RIDING, "model": "plus", "seed": 9, "size": "64x64",
    }  # fmt: skip
    assert "reference_role" not in redrawn.fields and edits(plus_worker) == []
    used = redrawn.answer["data"][0]["parameters"]
    assert (used["mode"], used["model"], used["references"]) == ("instruct", "plus", 1)
    # The model's VAE encoded the king's pixels (the one picture it read).
    (encoded,) = seen
    assert torch.allclose(encoded, vae_input(pipe, pixels_of(drawn_post.files[0].data)), atol=1e-5)
    # The likeness is the model's, not approximate: the reply says nothing more.
    assert answer.json["content"] == "Off he rides!"
    assert (riding.kind, riding.model, riding.parents) == ("reference", "plus", (Parent(king.id, "reference"),))
