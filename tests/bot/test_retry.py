"""🔁 Retry: a job that failed before a restart is said again with Retry, and only its asker's press draws it again."""

from __future__ import annotations

from egaku.config import Config
from egaku.i18n import Text
from tests.bot.harness import running_bot
from tests.bot.test_buttons import callback_of, followup_of
from tests.bot.test_chat import app_for
from tests.bot.test_resume import FOX, JOB, all_answered, journaled
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import FakeOpenAI
from tests.fakes.recording_worker import RecordingWorker
from tools.service.requests import Planned
from worker.protocol import GenerationRequest

STOPPED = "The image service stopped while drawing your picture."


async def test_a_failed_job_is_answered_with_retry_after_the_restart_and_its_askers_press_draws_it_again(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord
) -> None:
    message_id = fake_discord.next_id()
    address, who = journaled(message_id)
    async with app_for(app_config, fake_openai, recorder.url) as app:
        journal = app.images.journal
        assert journal is not None
        # The killed bot had told nobody yet: the job failed, its answer was never posted.
        await journal.open_turn(address)
        await journal.accepted(JOB, who, Planned(GenerationRequest(prompt=FOX, seed=5, job_id=JOB), "generate"))
        await journal.failed(JOB, Text(STOPPED), retryable=True)
        async with running_bot(fake_discord, app.agent, history=app.history):
            await all_answered(journal)
            (said,) = [r for r in fake_discord.requests if (r.json or {}).get("message_reference")]
            assert said.json["message_reference"]["message_id"] == message_id and not said.files
            assert said.json["content"] == STOPPED  # said again, in the service's own words
            (button,) = [b for row in said.json["components"] for b in row["components"]]
            assert (button["label"], button["custom_id"]) == ("Retry", f"egaku:retry:{JOB}")
            shown = next(int(i) for i, m in fake_discord.messages.items() if m.get("nonce") == said.json["nonce"])
            assert recorder.received == []  # a failed job is not sent again on its own

            stranger = await fake_discord.press(button["custom_id"], shown, user_id=21, user_name="bob")
            refused = await fake_discord.wait_for_request(callback_of(stranger))
            data = refused.json["data"]
            assert (data["content"], data["flags"]) == ("Only the person who asked can retry this.", 64)

            pressed = await fake_discord.press(button["custom_id"], shown)
            post = await fake_discord.wait_for_request(followup_of(pressed), timeout=120)
            await all_answered(journal)
    (received,) = recorder.received  # the kept request, drawn once, under a fresh job id
    wire = {"job_id", "stream", "stream_format"}
    sent = GenerationRequest.model_validate(received.fields).model_dump(exclude=wire)
    assert sent == GenerationRequest(prompt=FOX, seed=5).model_dump(exclude=wire)  # what it kept, unchanged
    assert received.fields["job_id"] != JOB and len(received.fields["job_id"]) == 16
    assert len(post.files) == 1 and post.files[0].filename.startswith("egaku_5_")  # seed 5's picture
    assert post.json["embeds"][0]["description"] == FOX
    assert fake_openai.requests == []  # no model call: the kept request is drawn as it was
