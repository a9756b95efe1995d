"""Taught words: trained on the real worker, kept per server in real SQLite, used only by their server."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import teach_settings
from tests.fakes.recording_worker import RecordingWorker
from tests.worker.direct import PIXEL_TOLERANCE, direct_pixels, load_textual_inversion
from tests.worker.test_teach import PICTURES
from tools.backends.worker_client import WorkerClient
from tools.checks.uploads import Upload, check_image
from tools.service.images import ImageService
from tools.service.requests import Draw, Drawn, Refused, Requester
from tools.service.teaching import ConceptService, Taught
from tools.stores.concepts import ConceptStore, concept_name
from worker.pipelines import Placement, load_pipeline
from worker.protocol import ProgressEvent, TeachSettingsUsed
from worker.teach import read_embedding

TaughtWords = tuple[ConceptService, RecordingWorker, Path]

CPU = Placement(device="cpu", dtype=torch.float32)
UPLOADS = [check_image(data, f"p{n}.png") for n, data in enumerate(PICTURES)]


class Watch:
    """Records what a status message would show."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.jobs: list[str] = []

    async def started(self, job_id: str) -> None:
        self.jobs.append(job_id)

    async def progress(self, job_id: str, event: ProgressEvent) -> None:
        self.events.append(event)

    async def finished(self, job_id: str) -> None:
        self.jobs.append(f"done {job_id}")


def alice(guild: str | None = "100", watch: Watch | None = None) -> Requester:
    return Requester(user_id="7", user_words="/teach our-mascot", guild_id=guild, channel_id="5", watch=watch)


@pytest.fixture
async def words(tmp_path: Path, teach_worker: RecordingWorker) -> AsyncIterator[TaughtWords]:
    folder = tmp_path / "concepts"
    store = await ConceptStore.open(tmp_path / "concepts.sqlite", folder)
    async with aiohttp.ClientSession() as session:
        yield ConceptService(store, WorkerClient(session, teach_worker.url)), teach_worker, folder
    await store.close()


async def test_teach_trains_on_the_worker_and_keeps_the_word_with_its_owner_pictures_and_settings(
    words: TaughtWords,
) -> None:
    concepts, worker, folder = words
    watch = Watch()
    outcome = await concepts.teach(alice(watch=watch), "<Our Mascot>", UPLOADS, "toy")
    assert isinstance(outcome, Taught)
    concept = outcome.concept
    assert (concept.guild_id, concept.name, concept.token, concept.owner_id) == (
        "100",
        "our-mascot",
        "<our-mascot>",
        "7",
    )
    assert (concept.model, concept.family, outcome.steps, outcome.stopped_by) == ("tiny", "sdxl", 4, "steps")
    used = TeachSettingsUsed.model_validate_json(concept.settings)
    assert (used.init_word, used.steps, used.images, used.width, used.learning_rate) == ("toy", 4, 3, 64, 0.005)
    assert sorted(read_embedding((folder / concept.file).read_bytes())) == ["clip_g", "clip_l"]
    assert [(folder / s).read_bytes() for s in concept.sources] == [u.png for u in UPLOADS]  # the checked uploads
    (sent,) = [r for r in worker.received if r.path == "/v1/concepts/train"]
    assert sent.fields == {"token": "<our-mascot>", "user": "7", "init_word": "toy", "job_id": watch.jobs[0],
                           "stream": "true"}  # fmt: skip
    steps = [e for e in watch.events if e.kind == "step"]
    assert [(e.step, e.steps) for e in steps] == [(2, 4), (4, 4)]  # chunks of 2
    assert all(e.loss is not None and e.loss > 0 and e.eta_s is not None for e in steps)
    assert watch.jobs == [watch.jobs[0], f"done {watch.jobs[0]}"]
    assert await concepts.store.of("100") == [concept]


@pytest.mark.parametrize(
    ("name", "pictures", "guild", "reason"),
    [
        ("our mascot!", UPLOADS, "100", "a word's name is 1 to 31 letters, digits, - or _, starting with a letter or "
                                        "digit (like our-mascot)"),
        ("mascot", UPLOADS[:2], "100", "teaching a word takes 3 to 10 pictures; got 2"),
        ("mascot", UPLOADS * 4, "100", "teaching a word takes 3 to 10 pictures; got 12"),
        ("mascot", UPLOADS, None, "words are taught to a server: use /teach in a server"),
        ("mascot", UPLOADS, "100", "`like` is one everyday English word for what it is, such as toy, cat or logo"),
    ],
)  # fmt: skip
async def test_teach_refuses_before_any_training(
    words: TaughtWords,
    name: str,
    pictures: list[Upload],
    guild: str | None,
    reason: str,
) -> None:
    concepts, worker, _ = words
    like = "猫" if reason.startswith("`like`") else None
    outcome = await concepts.teach(alice(guild), name, pictures, like)
    assert isinstance(outcome, Refused) and str(outcome.reason) == reason
    assert worker.received == []  # nothing reached the worker


async def test_a_taught_word_draws_what_its_file_means_for_its_server_and_means_nothing_elsewhere(
    words: TaughtWords, worker_cache: Path
) -> None:
    concepts, worker, _ = words
    assert isinstance(await concepts.teach(alice(), "our-mascot", UPLOADS), Taught)
    async with aiohttp.ClientSession() as session:
        images = ImageService(WorkerClient(session, worker.url), concepts=concepts)
        prompt = "a photo of <our-mascot> on the moon"
        outcomes = {}
        for guild in ("100", "200", None):
            who = Requester(user_id="7", user_words="draw our mascot on the moon", guild_id=guild)
            outcomes[guild] = await images.draw(who, Draw(prompt=prompt, seed=12))
    renders = [r for r in worker.received if r.path == "/v1/images/generations"]
    sent = [r.fields.get("concepts") for r in renders]
    file = concepts.store.path((await concepts.store.of("100"))[0].file)
    embedding = base64.b64encode(file.read_bytes()).decode()
    assert sent == [[{"token": "<our-mascot>", "embedding": embedding}], None, None]  # only its own server sends it
    assert [r.answer["data"][0]["parameters"]["concepts"] for r in renders] == [["<our-mascot>"], [], []]
    pictures = []
    for guild in ("100", "200", None):
        drawn = outcomes[guild]
        assert isinstance(drawn, Drawn)
        pictures.append(np.asarray(Image.open(io.BytesIO(drawn.images[0].png)), dtype=np.int16))
    # Its server's picture is the tiny pipeline's with the word's file loaded by diffusers itself.
    reference = load_pipeline(teach_settings(worker_cache).models["tiny"], CPU, worker_cache)
    load_textual_inversion(reference, file, "<our-mascot>")
    ours = outcomes["100"]
    assert isinstance(ours, Drawn)
    picture = ours.images[0]
    assert (picture.prompt, picture.seed) == (prompt, 12)
    call = {"prompt": picture.prompt, "num_inference_steps": picture.steps, "guidance_scale": picture.guidance,
            "width": picture.width, "height": picture.height}  # fmt: skip
    assert np.abs(pictures[0] - direct_pixels(reference, 12, call)).max() <= PIXEL_TOLERANCE
    assert np.abs(pictures[0] - pictures[1]).max() > PIXEL_TOLERANCE  # the word changes the picture, same seed
    assert np.array_equal(pictures[1], pictures[2])  # another server's prompt is plain text


async def test_rename_and_delete_and_deleting_removes_the_files(
    words: TaughtWords,
) -> None:
    concepts, _, folder = words
    taught = await concepts.teach(alice(), "mascot", UPLOADS)
    assert isinstance(taught, Taught)
    assert isinstance(await concepts.teach(alice(), "other", UPLOADS), Taught)
    assert said(await concepts.rename("100", "mascot", "other")) == "this server already has <other>"
    assert said(await concepts.rename("200", "mascot", "bear")) == "this server has no word <mascot>"
    renamed = await concepts.rename("100", "<mascot>", "Our Bear")
    assert not isinstance(renamed, Refused) and renamed.token == "<our-bear>"
    assert await concepts.concepts_in("100", "a <mascot>") == []
    assert [w.token for w in await concepts.concepts_in("100", "a <our-bear> and <other>")] == ["<our-bear>", "<other>"]
    files = [folder / taught.concept.file, *(folder / s for s in taught.concept.sources)]
    assert all(f.exists() for f in files)
    assert said(await concepts.delete("200", "our-bear")) == "this server has no word <our-bear>"
    deleted = await concepts.delete("100", "our-bear")
    assert not isinstance(deleted, Refused) and deleted.name == "our-bear"
    assert not any(f.exists() for f in files)
    assert not (folder / taught.concept.file).parent.exists()
    assert [c.name for c in await concepts.store.of("100")] == ["other"]
    assert said(await concepts.teach(alice(), "other", UPLOADS)) == (
        "this server already has <other>; delete or rename it first (/concepts)"
    )


async def test_the_agent_note_lists_only_the_servers_words(words: TaughtWords) -> None:
    concepts, _, _ = words
    assert await concepts.note("100") == ""
    assert isinstance(await concepts.teach(alice(), "our-mascot", UPLOADS), Taught)
    note = await concepts.note("100")
    assert note.startswith("Words this server taught the image model: <our-mascot>. When the user means one")
    assert await concepts.note("200") == "" and await concepts.note(None) == ""


def test_word_names() -> None:
    assert concept_name(" <Our Mascot> ") == "our-mascot"
    assert concept_name("cat_2") == "cat_2"
    for bad in ("", "-cat", "a" * 32, "猫", "<>"):
        with pytest.raises(ValueError):
            concept_name(bad)


def said(outcome: object) -> object:
    """A refusal as the English text it carries (anything else as it is)."""
    return str(outcome.reason) if isinstance(outcome, Refused) else outcome
