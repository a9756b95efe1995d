"""A restarted bot answers what the journal holds: once, in the right place, with the buttons, or plainly with Retry.

Each test writes the journal as a bot killed at some moment left it, then starts the real bot
on it against the fake Discord (which keeps Discord's nonce and deferred-response rules).
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import aiohttp
import aiosqlite

from agent.service import TurnRequest
from bot.answering import ask_of
from bot.deliver import nonce_for
from bot.resume import RESTARTED_TEXT
from egaku.config import Config
from egaku.errors import WorkerLost
from tests.bot.harness import running_bot
from tests.bot.test_chat import app_for
from tests.bot.test_conversation import KING, sha
from tests.bot.test_reference_edits import HAT_ON, edits, plus_engine, plus_worker, with_plus
from tests.fakes.discord import APP_ID, CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker
from tests.tools.test_references import drawn
from tools.backends.worker_client import WorkerClient
from tools.pictures import Parent
from tools.service.images import ImageService
from tools.service.requests import AnswerTo, Draw, Edit, ImageOptions, Planned, Requester
from tools.stores.journal import JobJournal
from worker.engine import Engine
from worker.protocol import GenerationRequest

__all__ = ["plus_engine", "plus_worker"]  # the fixtures this module uses

FOX = "a red fox in fresh snow, watercolour"
JOB = "00112233aabbccdd"


async def all_answered(journal: JobJournal) -> None:
    """Until the restarted bot has answered every open request (pytest-timeout bounds the wait)."""
    while await journal.unfinished():
        await asyncio.sleep(0.02)


async def reopen(path: Path) -> None:
    """The journal as a bot killed between its post and the mark leaves it: the turn open, its job done."""
    async with aiosqlite.connect(path) as db:
        await db.execute("UPDATE turns SET state = 'open'")
        await db.execute("UPDATE jobs SET state = 'done'")
        await db.commit()


def journaled(message_id: int, **answer: object) -> tuple[AnswerTo, Requester]:
    """The answer address and asker of a chat message, as the killed bot journaled them."""
    address = AnswerTo(turn=f"message:{message_id}", channel_id=str(CHANNEL_ID), user_id="20",
                       message_id=str(message_id), **answer)  # type: ignore[arg-type]  # fmt: skip
    who = Requester(user_id="20", user_words="draw a fox", conversation=f"discord:{CHANNEL_ID}",
                    guild_id="1000", channel_id=str(CHANNEL_ID), source_id=str(message_id), answer=address)  # fmt: skip
    return address, who


async def test_a_job_in_flight_when_the_bot_died_is_posted_as_a_reply_to_its_message_once(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    message_id = fake_discord.next_id()
    address, who = journaled(message_id)
    async with app_for(app_config, fake_openai, worker_url) as app:
        journal = app.images.journal
        assert journal is not None
        await journal.open_turn(address)
        request = GenerationRequest(prompt=FOX, seed=3, job_id=JOB)
        await journal.accepted(JOB, who, Planned(request, "generate", reply="Here is your fox!"))
        await journal.moved(JOB, "running")
        async with running_bot(fake_discord, app.agent, history=app.history):
            post = await fake_discord.wait_for_request(lambda r: r.method == "POST" and bool(r.files), timeout=120)
            await all_answered(journal)
        assert post.path == f"/api/v10/channels/{CHANNEL_ID}/messages"
        assert post.json["message_reference"]["message_id"] == message_id
        assert (post.json["nonce"], post.json["enforce_nonce"]) == (nonce_for(address.turn, 0), True)
        assert post.json["content"] == "Here is your fox!"
        assert post.json["embeds"][0]["description"] == FOX and "seed 3" in post.json["embeds"][0]["footer"]["text"]
        labels = [b.get("label", "") for row in post.json["components"] for b in row["components"]]
        assert labels[:2] == ["Reroll", "Vary (subtle)"]  # the same buttons as if nothing had happened
        shown = next(m for m in fake_discord.messages.values() if m.get("nonce") == nonce_for(address.turn, 0))
        (kept,) = await app.history.by_message(shown["id"])  # the history links the picture to its message
        assert (kept.prompt, kept.seed, kept.user_id) == (FOX, 3, "20")
        job = await journal.job(JOB)
        assert job is not None and job.state == "posted"

        # A crash between the post and the mark: the next start posts again, and Discord keeps the first message.
        await reopen(app_config.storage.history_path / "journal.sqlite")
        async with running_bot(fake_discord, app.agent, history=app.history):
            await all_answered(journal)
    assert fake_discord.deliveries.repeats == 1
    assert len([m for m in fake_discord.messages.values() if m["attachments"]]) == 1  # one picture in the channel


def interaction_answer_in(fake: FakeDiscord, asked_at: float) -> AnswerTo:
    """A deferred /imagine as the fake holds it (its loading response), and its journaled address."""
    interaction_id, token, original = fake.deferred(age_s=time.time() - asked_at)
    return AnswerTo(turn=f"interaction:{interaction_id}", channel_id=str(CHANNEL_ID), user_id="20",
                    interaction_id=str(interaction_id), application_id=str(APP_ID), token=token,
                    original_id=str(original), asked_at=asked_at)  # fmt: skip


async def test_an_interaction_is_answered_in_its_deferred_response_or_past_its_token_in_the_channel(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fresh = interaction_answer_in(fake_discord, asked_at=time.time() - 60)
    stale = interaction_answer_in(fake_discord, asked_at=time.time() - 20 * 60)  # its token died meanwhile
    async with app_for(app_config, fake_openai, worker_url) as app:
        journal = app.images.journal
        assert journal is not None
        for n, address in enumerate((fresh, stale)):
            who = Requester(user_id="20", user_words=FOX, conversation=f"discord:{CHANNEL_ID}", answer=address)
            job_id = f"{n:016x}"
            await journal.accepted(
                job_id, who, Planned(GenerationRequest(prompt=FOX, seed=n, job_id=job_id), "generate")
            )
        async with running_bot(fake_discord, app.agent, history=app.history):
            await all_answered(journal)
    edits = [r for r in fake_discord.requests if r.method == "PATCH" and r.files]
    assert [r.path for r in edits] == [f"/api/v10/webhooks/{APP_ID}/{fresh.token}/messages/{fresh.original_id}"]
    filled = fake_discord.messages[int(fresh.original_id or 0)]
    assert filled["flags"] == 0 and len(filled["attachments"]) == 1  # the "thinking" response now shows the picture
    (channel_post,) = [r for r in fake_discord.requests if r.method == "POST" and r.files]
    assert channel_post.path == f"/api/v10/channels/{CHANNEL_ID}/messages"
    assert channel_post.json["content"].startswith("<@20>")
    assert channel_post.json["allowed_mentions"] == {"parse": [], "users": [20]}  # only the asker is pinged
    assert channel_post.json["nonce"] == nonce_for(stale.turn, 0)
    assert not [path for path, _ in fake_discord.refused]


async def test_a_request_the_bot_died_on_before_any_job_runs_again_or_is_answered_plainly(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    """Killed while the model thought: the turn runs again (the conversation kept none of it), or is told plainly."""
    fake_openai.then(Call("generate_image", {"prompt": FOX, "seed": 4, "reply": "Here!"}))
    again, _ = journaled(fake_discord.next_id())
    plain, _ = journaled(fake_discord.next_id())
    japanese, _ = journaled(fake_discord.next_id(), locale="ja")  # asked in Japanese: answered in Japanese
    failed, who = journaled(fake_discord.next_id(), locale="ja")  # its job failed before the restart
    async with app_for(app_config, fake_openai, worker_url) as app:
        journal = app.images.journal
        assert journal is not None
        turn = TurnRequest.of(
            f"discord:{CHANNEL_ID}", "20", "alice", "draw a fox", guild_id="1000", channel_id=str(CHANNEL_ID),
            source_id=again.message_id, options=ImageOptions(),
        )  # fmt: skip
        await journal.open_turn(again, ask=ask_of(turn))
        await journal.open_turn(plain)
        await journal.open_turn(japanese)
        await journal.accepted(JOB, who, Planned(GenerationRequest(prompt=FOX, seed=5, job_id=JOB), "generate"))
        await journal.failed(JOB, WorkerLost("cut mid-stream").text, retryable=True)
        async with running_bot(fake_discord, app.agent, history=app.history):
            await all_answered(journal)
    posts = {str(r.json["message_reference"]["message_id"]): r for r in fake_discord.requests if r.method == "POST"
             and r.path.endswith("/messages") and r.json.get("message_reference")}  # fmt: skip
    assert posts[again.message_id].json["content"] == "Here!" and len(posts[again.message_id].files) == 1
    assert posts[plain.message_id].json["content"] == str(RESTARTED_TEXT) and not posts[plain.message_id].files
    assert posts[japanese.message_id].json["content"] == (
        "仕上げる前にボットが再起動したため、この続きを引き継げません。もう一度頼んでください。"
    )
    # A failure said before the restart is said again in the asked language, with its Retry button.
    assert (
        posts[failed.message_id].json["content"]
        == "絵を描いている途中で画像サービスが止まりました。もう一度お試しください。"
    )
    assert [b["custom_id"] for row in posts[failed.message_id].json["components"] for b in row["components"]] == [
        f"egaku:retry:{JOB}"
    ]
    assert fake_openai.rejected == []  # the conversation the model saw was valid


async def test_a_reference_edit_and_a_blend_journaled_before_the_bot_died_resume_with_all_their_pictures_in_order(
    app_config: Config, plus_engine: Engine, plus_worker: RecordingWorker, fake_openai: FakeOpenAI,
    fake_discord: FakeDiscord,
) -> None:  # fmt: skip
    """The bot planned both and was killed while its worker was away: the journal holds their pictures by id only,
    and the restarted bot reads every one again from the history, sends them in order, and keeps the lineage."""
    message_id = fake_discord.next_id()
    address, who = journaled(message_id)
    async with app_for(with_plus(app_config, plus_engine), fake_openai, plus_worker.url) as app:
        journal = app.images.journal
        assert journal is not None
        mine = {"conversation": f"discord:{CHANNEL_ID}", "user_id": "20"}
        king = await drawn(app.history, KING, "orangered", seed=7, **mine)
        hat = await drawn(app.history, "a straw hat", "khaki", seed=8, **mine)
        scarf = await drawn(app.history, "a striped scarf", "crimson", seed=9, **mine)
        pngs = {g.id: app.history.png(g) for g in (king, hat, scarf)}
        async with aiohttp.ClientSession() as session:  # the killed bot's service, its worker away
            away = WorkerClient(session, "http://127.0.0.1:9")
            killed = ImageService(away, history=app.history, journal=journal, references=app.images.references,
                                  retry_for_s=600)  # fmt: skip
            await journal.open_turn(address)
            tasks = [
                asyncio.create_task(killed.edit(who, Edit(king.id, HAT_ON, references=(hat.id, scarf.id)))),
                asyncio.create_task(killed.draw(who, Draw("picture 1 and picture 2 blended",
                                                          references=(scarf.id, king.id)))),
            ]  # fmt: skip
            while [job.state for turn in await journal.unfinished() for job in turn.jobs] != ["sent", "sent"]:
                await asyncio.sleep(0.02)
            for task in tasks:  # the kill
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        (turn,) = await journal.unfinished()
        edit_job, blend_job = sorted(turn.jobs, key=lambda job: job.planned.kind != "reference")
        assert (edit_job.planned.pictures, edit_job.planned.pngs) == ((king.id, hat.id, scarf.id), ())
        assert (blend_job.planned.pictures, blend_job.planned.request.references) == ((scarf.id, king.id), [])
        async with running_bot(fake_discord, app.agent, history=app.history):
            await all_answered(journal)
        ended = [await journal.job(job.job_id) for job in (edit_job, blend_job)]
        edited, blended = [await app.history.get(job.images[0]) for job in ended if job is not None]
    (edit,) = edits(plus_worker)
    (generation,) = [r for r in plus_worker.received if r.path == "/v1/images/generations"]
    # Each job went to the worker once, under its journaled id, with every picture in its order.
    assert (edit.fields["job_id"], generation.fields["job_id"]) == (edit_job.job_id, blend_job.job_id)
    assert edit.parts == [("image[]", sha(pngs[i])) for i in (king.id, hat.id, scarf.id)]
    assert [sha(base64.b64decode(r)) for r in generation.fields["references"]] == [
        sha(pngs[i]) for i in (scarf.id, king.id)
    ]
    assert (edit.fields["prompt"], edit.fields["model"], edit.fields["seed"]) == (HAT_ON, "plus", "7")
    # The history keeps each new picture's parents, in order, with their roles.
    assert edited is not None and (edited.kind, edited.parents) == (
        "reference", (Parent(king.id, "edited"), Parent(hat.id, "reference"), Parent(scarf.id, "reference")),
    )  # fmt: skip
    assert blended is not None and (blended.kind, blended.parents) == (
        "blend", (Parent(scarf.id, "reference"), Parent(king.id, "reference")),
    )  # fmt: skip
    # Both pictures were posted once, in one reply to the message.
    (post,) = [r for r in fake_discord.requests if r.method == "POST" and r.files]
    assert post.json["message_reference"]["message_id"] == message_id and len(post.files) == 2
