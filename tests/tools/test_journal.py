"""The job journal: turns and jobs written before they are sent, their states, what a restart reads back."""

from __future__ import annotations

from pathlib import Path

from egaku.i18n import _, n_
from tools.pictures import Parent
from tools.service.references import APPROXIMATE_TEXT
from tools.service.requests import AnswerTo, ImageOptions, Planned, Requester
from tools.stores.journal import JobJournal
from worker.protocol import EditRequest, GenerationRequest

ANSWER = AnswerTo(
    turn="interaction:77", channel_id="2000", user_id="20", interaction_id="77", application_id="900",
    token="itoken-77", original_id="501", asked_at=1_700_000_000.0,
)  # fmt: skip
WHO = Requester(
    user_id="20", user_words="draw a fox", conversation="discord:2000", guild_id="1000", channel_id="2000",
    source_id="77", options=ImageOptions(aspect="3:2", count=2), nsfw=False, guild_cap=4, answer=ANSWER,
)  # fmt: skip


async def test_a_job_is_read_back_as_it_was_written_and_moves_through_its_states(tmp_path: Path) -> None:
    journal = await JobJournal.open(tmp_path / "journal.sqlite")
    request = GenerationRequest(prompt="a red fox", seed=7, job_id="a" * 16)
    await journal.accepted("a" * 16, WHO, Planned(request, "generate", reply="Here!"))
    edit = EditRequest(prompt="the fox from picture 1 wearing the hat from picture 2", job_id="b" * 16)
    lineage = (Parent("k3m9", "edited"), Parent("x7pq", "reference"))
    planned = Planned(edit, "reference", lineage, ("k3m9", "x7pq"), (b"png", b"png2"), notice=APPROXIMATE_TEXT)
    await journal.accepted("b" * 16, WHO, planned)
    blend = GenerationRequest(prompt="a blend", references=["aGVsbG8=", "d29ybGQ="], job_id="c" * 16)
    await journal.accepted("c" * 16, WHO, Planned(blend, "blend", lineage[1:], ("x7pq", "k3m9"), (b"1", b"2")))
    await journal.moved("a" * 16, "sent")
    await journal.moved("a" * 16, "running")
    await journal.status_shown("a" * 16, "2000", "600")
    await journal.close()

    journal = await JobJournal.open(tmp_path / "journal.sqlite")  # as a restarted bot opens it
    (turn,) = await journal.unfinished()
    assert (turn.turn, turn.answer, turn.ask, turn.attempts) == ("interaction:77", ANSWER, None, 0)
    first, second, third = turn.jobs
    assert (first.job_id, first.state, first.status, first.finished) == ("a" * 16, "running", ("2000", "600"), False)
    assert first.who == WHO  # the asker whole, with the turn's answer address
    assert first.planned.request == request and (first.planned.kind, first.planned.reply) == ("generate", "Here!")
    assert isinstance(second.planned.request, EditRequest) and second.planned.request == edit
    # The pictures are kept by history id, in order, never their files (the history has them).
    assert (second.planned.parents, second.planned.pictures, second.planned.pngs) == (lineage, ("k3m9", "x7pq"), ())
    assert (second.planned.kind, second.planned.notice, second.state) == ("reference", APPROXIMATE_TEXT, "queued")
    assert third.planned.request == blend.model_copy(update={"references": []})  # no base64 in the journal
    assert (third.planned.parents, third.planned.pictures, third.planned.kind) == (
        lineage[1:],
        ("x7pq", "k3m9"),
        "blend",
    )
    await journal.done("a" * 16, ["k3m9", "p4q5"])
    # The user's text is kept as a text to say in their language (its values too, a text among them).
    busy = n_(
        "{count} picture waits, about {wait}.",
        "{count} pictures wait, about {wait}.",
        9,
        wait=_("{minutes} min", minutes=3),
    )
    await journal.failed("b" * 16, busy, retryable=True)
    first, second, _third = (await journal.unfinished())[0].jobs
    assert (first.state, first.images, first.finished) == ("done", ("k3m9", "p4q5"), True)
    assert (second.state, second.error, second.retryable) == ("failed", busy, True)
    assert str(second.error) == "9 pictures wait, about 3 min."
    await journal.close()


async def test_an_answered_turn_is_done_with_its_jobs_and_forgets_its_token(tmp_path: Path) -> None:
    journal = await JobJournal.open(tmp_path / "journal.sqlite")
    await journal.open_turn(ANSWER, ask='{"who": "..."}')
    await journal.accepted("c" * 16, WHO, Planned(GenerationRequest(prompt="a fox"), "generate"))
    assert await journal.resumed("interaction:77") == 1 and await journal.resumed("interaction:77") == 2
    (turn,) = await journal.unfinished()
    assert (turn.ask, turn.attempts) == ('{"who": "..."}', 2)
    await journal.answered("interaction:77")
    assert await journal.unfinished() == []
    job = await journal.job("c" * 16)
    assert job is not None and job.state == "posted"
    kept = await journal.turn_of("c" * 16)  # a Retry press finds the request, never the token
    assert kept is not None and kept.answer.token is None and kept.jobs[0].who.answer == kept.answer
    await journal.close()


async def test_open_turns_come_back_oldest_first_and_old_answered_ones_are_forgotten(tmp_path: Path) -> None:
    journal = await JobJournal.open(tmp_path / "journal.sqlite", keep_days=1)
    for n in (3, 1, 2):
        await journal.open_turn(AnswerTo(turn=f"message:{n}", channel_id="2000", user_id="20", message_id=str(n)))
    await journal.answered("message:1")
    assert [t.turn for t in await journal.unfinished()] == ["message:3", "message:2"]
    await journal.close()
    journal = await JobJournal.open(tmp_path / "journal.sqlite", keep_days=0)  # now everything answered is old
    assert await journal.turn_of("nothing") is None
    await journal.open_turn(AnswerTo(turn="message:1", channel_id="2000", user_id="20"))  # forgotten: new again
    assert [t.turn for t in await journal.unfinished()] == ["message:3", "message:2", "message:1"]
    await journal.close()
