"""The image service's best-of-N: whose choice wins, the cap, and what the history keeps."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp

from egaku.errors import TooManyCandidates
from tests.fakes.recording_worker import RecordingWorker
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService
from tools.service.requests import Draw, Drawn, ImageOptions, Refused, Requester
from tools.stores.history import History

FOX = "a red fox in fresh snow, watercolour"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_the_users_choice_then_the_models_then_the_servers_then_the_bots(
    recorder: RecordingWorker, tmp_path: Path
) -> None:
    asked = [
        (ImageOptions(best_of=2), Draw(FOX, best_of=3), 4),  # the user's explicit option wins
        (ImageOptions(), Draw(FOX, best_of=3), 4),  # then the model's
        (ImageOptions(), Draw(FOX), 4),  # then the server's default
        (ImageOptions(), Draw(FOX), None),  # then the bot's ([best_of] default)
        (ImageOptions(count=2), Draw(FOX), 4),  # a default gives way to the grid the user asked for
    ]
    async with aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), best_of=2, max_best_of=4)
        for options, draw, server in asked:
            who = Requester(user_id="alice", user_words=FOX, options=options, best_of=server)
            assert isinstance(await service.draw(who, draw), Drawn)
        alone = ImageService(WorkerClient(session, recorder.url))  # best-of off: the request is as it always was
        await alone.draw(Requester(user_id="alice", user_words=FOX), Draw(FOX))
    assert [r.fields.get("best_of") for r in recorder.received] == [2, 3, 4, 2, None, None]
    assert [r.fields.get("n") for r in recorder.received] == [None, None, None, None, 2, None]


async def test_past_the_cap_is_refused_before_the_worker_with_the_users_text(recorder: RecordingWorker) -> None:
    async with aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), max_best_of=3)
        too_many = await service.draw(Requester(user_id="alice", user_words=FOX), Draw(FOX, best_of=4))
        server = await service.draw(Requester(user_id="alice", user_words=FOX, best_of=5), Draw(FOX))
    text = TooManyCandidates(4, 3).text
    assert too_many == Refused(text, invalid=True)
    assert str(text) == "I can pick the best of 1 to 3 pictures here; you asked for 4."
    assert server == Refused(TooManyCandidates(5, 3).text, invalid=True)
    assert recorder.received == []


async def test_the_chosen_picture_is_the_workers_best_and_the_history_keeps_every_candidate(
    recorder: RecordingWorker, tmp_path: Path
) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    who = Requester(user_id="alice", user_words="the best fox please", conversation="c")
    async with aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), history=history)
        outcome = await service.draw(who, Draw(FOX, seed=7, best_of=3))
    assert isinstance(outcome, Drawn)
    (best,) = outcome.images
    answer = recorder.received[0].answer
    data, chosen = answer["data"], answer["chosen"]
    scores = [item["score"] for item in data]
    assert chosen == scores.index(max(scores))
    assert (sha(best.png), best.seed, best.score) == (data[chosen]["sha256"], 7 + chosen, max(scores))
    others = sorted((item for n, item in enumerate(data) if n != chosen), key=lambda item: -item["score"])
    kept = await history.candidates(best.id or "")
    assert [(sha(history.png(g)), g.seed, g.score, g.candidate_of) for g in kept] == [
        (item["sha256"], item["seed"], item["score"], best.id) for item in others
    ]
    posted = await history.get(best.id or "")
    assert posted is not None and (posted.score, posted.candidate_of) == (max(scores), None)  # the chosen one
    assert [g.id for g in await history.mine("c", "alice")] == [best.id]
    assert {c.id for c in best.candidates} == {g.id for g in kept}
    log = await history.audit_log("alice")
    assert log[-1].image_ids == best.id  # the audit names the posted picture
    await history.close()
