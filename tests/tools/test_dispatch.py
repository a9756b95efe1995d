"""Sending a job: journaled first, sent again under its id while the worker is away, cancellable while it waits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from egaku.errors import JobCancelled
from egaku.i18n import Text
from tests.fakes.broken_worker import CuttingProxy
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService
from tools.service.requests import AnswerTo, Draw, Drawn, Failed, Requester
from tools.stores.history import History
from tools.stores.journal import JobJournal

FOX = "a red fox in fresh snow, watercolour"
ANSWER = AnswerTo(turn="message:42", channel_id="2000", user_id="alice", message_id="42")
ALICE = Requester(user_id="alice", user_words="draw a fox", conversation="discord:2000", answer=ANSWER)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[History, JobJournal]]:
    history = await History.open(tmp_path / "history.sqlite", tmp_path / "files")
    journal = await JobJournal.open(tmp_path / "journal.sqlite")
    yield history, journal
    await journal.close()
    await history.close()


async def completed(worker_url: str) -> int:
    """Jobs the worker finished (rendered), from its metrics."""
    async with aiohttp.ClientSession() as session, session.get(worker_url + "/metrics") as resp:
        text = await resp.text()
    return int(next(line for line in text.splitlines() if 'egaku_jobs_total{outcome="completed"}' in line).split()[-1])


async def test_a_job_whose_connection_breaks_is_sent_again_under_its_id_and_drawn_once(
    worker_url: str, stores: tuple[History, JobJournal]
) -> None:
    history, journal = stores
    proxy = CuttingProxy(worker_url, cuts=1)
    await proxy.start()
    try:
        async with aiohttp.ClientSession() as session:
            service = ImageService(WorkerClient(session, proxy.url), history=history, journal=journal, retry_for_s=60)
            outcome = await service.draw(ALICE, Draw(FOX, seed=5, reply="Here it is!"))
    finally:
        await proxy.stop()
    assert isinstance(outcome, Drawn)
    sent = [json.loads(body) for body in proxy.bodies]
    assert len(sent) == 2 and sent[0] == sent[1] and len(sent[0]["job_id"]) == 16  # the same request, the same id
    assert await completed(worker_url) == 1  # the worker drew it once
    (turn,) = await journal.unfinished()  # done, and waiting for the bot to post it
    (job,) = turn.jobs
    assert (job.job_id, job.state, job.images) == (sent[0]["job_id"], "done", (outcome.images[0].id,))
    assert (job.planned.reply, job.planned.request.seed) == ("Here it is!", 5)


async def test_a_journaled_job_resumed_after_a_restart_gets_the_workers_kept_picture(
    worker_url: str, stores: tuple[History, JobJournal]
) -> None:
    """The bot died after sending: the worker finished the job meanwhile, and the resumed job is not drawn again."""
    history, journal = stores
    async with aiohttp.ClientSession() as session:
        client = WorkerClient(session, worker_url)
        before = ImageService(client, history=history, journal=journal)
        job_id = "0123456789abcdef"
        first = await before.draw(dataclasses.replace(ALICE, job_id=job_id), Draw(FOX, seed=9))
        assert isinstance(first, Drawn)
        await journal.moved(job_id, "sent")  # as if the bot was killed before the answer arrived
        (turn,) = await journal.unfinished()
        (job,) = turn.jobs
        after = ImageService(client, history=history, journal=journal)  # the restarted bot's service
        again = await after.resume(job)
    assert isinstance(again, Drawn)
    assert again.images[0].png == first.images[0].png and again.images[0].seed == 9
    assert await completed(worker_url) == 1


async def test_a_job_waiting_for_its_worker_to_come_back_can_be_cancelled(stores: tuple[History, JobJournal]) -> None:
    history, journal = stores
    async with aiohttp.ClientSession() as session:
        service = ImageService(
            WorkerClient(session, "http://127.0.0.1:9"), history=history, journal=journal, retry_for_s=600
        )
        drawing = asyncio.create_task(service.draw(ALICE, Draw(FOX)))
        while not (turns := await journal.unfinished()) or turns[0].jobs[0].state != "sent":
            await asyncio.sleep(0.01)
        job_id = turns[0].jobs[0].job_id
        await asyncio.sleep(0.1)  # the first try has failed: it waits for the worker
        assert await service.cancel(job_id)
        outcome = await asyncio.wait_for(drawing, 10)
    assert isinstance(outcome, Failed) and isinstance(outcome.error, JobCancelled) and outcome.job_id == job_id
    job = await journal.job(job_id)
    assert job is not None and (job.state, job.retryable, job.error) == ("failed", False, Text("Cancelled."))
