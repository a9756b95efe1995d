"""The image service's pictures-from-pictures rules, before and at the worker: the configured model's own limit,
each picture named once, the style role on the wire, and the worker's own check behind the service's."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import aiohttp
from PIL import Image

from tests.bot.test_conversation import sha
from tests.fakes.recording_worker import RecordingWorker
from tests.tools.test_history import add
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService
from tools.service.references import ReferenceModel
from tools.service.requests import Draw, Drawn, Edit, Refused, Requester
from tools.stores.history import Generation, History

ALICE = Requester(user_id="alice", user_words="combine them", conversation="c")


async def drawn(history: History, prompt: str, colour: str, **extra: object) -> Generation:
    """A drawn picture of one colour in Alice's history (real pixels: the worker reads them)."""
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(picture, format="PNG")
    fields: dict[str, object] = {
        "conversation": "c", "user_id": "alice", "user_words": prompt, "prompt": prompt, "negative_prompt": None,
        "seed": 7, "width": 64, "height": 64, "steps": 2, "model": "tiny", "kind": "generate", **extra,
    }  # fmt: skip
    return await history.add(picture.getvalue(), **fields)


async def test_more_pictures_than_the_model_reads_are_refused_before_the_worker(
    recorder: RecordingWorker, tmp_path: Path
) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    ids = [(await add(history, "alice", f"picture {n}")).id for n in range(4)]
    async with aiohttp.ClientSession() as session:
        # "tiny" stands in for a model that reads 3 pictures in an edit and 2 in a new picture.
        service = ImageService(WorkerClient(session, recorder.url), history=history,
                               references=ReferenceModel("tiny", edit_pictures=3, draw_pictures=2))  # fmt: skip
        edit = await service.edit(ALICE, Edit(ids[0], "all four", references=tuple(ids[1:])))
        blend = await service.draw(ALICE, Draw("all three", references=tuple(ids[:3])))
    assert isinstance(edit, Refused) and isinstance(blend, Refused)
    assert (
        str(edit.reason) == "The model here reads at most 3 pictures at once, the edited one first; this asked for 4."
    )
    assert str(blend.reason) == "The model here reads at most 2 pictures at once; this asked for 3."
    assert recorder.received == []
    await history.close()


async def test_a_picture_named_twice_is_read_once_and_a_style_goes_on_the_wire(
    recorder: RecordingWorker, tmp_path: Path
) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    fox = await drawn(history, "a red fox in fresh snow", "orangered", seed=3)
    wave = await drawn(history, "a great wave in woodblock style", "navy")
    async with aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), history=history,
                               references=ReferenceModel("tiny", edit_pictures=3, draw_pictures=3))  # fmt: skip
        # The fox twice (by id and as "first") and the wave by words: two pictures, the fox as picture 1.
        styled = await service.edit(
            ALICE,
            Edit(fox.id, "the fox from picture 1 in the style of picture 2", mode="reference",
                 references=(fox.id, "first", "the wave one"), role="style"),
        )  # fmt: skip
        same = await service.edit(ALICE, Edit(fox.id, "the fox at night", mode="subtle", references=(fox.id,)))
    # The tiny SDXL preset reads no reference pictures: the worker's own check answers, and the service passes it on.
    assert isinstance(styled, Refused) and styled.detail == "model 'tiny' (sdxl) draws nothing from reference pictures"
    sent, edited = recorder.received
    assert sent.path == "/v1/images/generations"
    assert [sha(base64.b64decode(r)) for r in sent.fields["references"]] == [sha(history.png(g)) for g in (fox, wave)]
    assert {k: sent.fields[k] for k in ("reference_role", "seed", "size", "model")} == {
        "reference_role": "style", "seed": 3, "size": "64x64", "model": "tiny",
    }  # fmt: skip
    # Naming only the edited picture again is an edit of one picture, with the model that drew it.
    assert isinstance(same, Drawn) and edited.parts == [("image", sha(history.png(fox)))]
    assert (same.images[0].kind, [p.role for p in same.images[0].parents]) == ("subtle", ["edited"])
    await history.close()
