"""Discord-platform faults, one by one (../shared/brief/reliability.md)."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading

import numpy as np
import pytest
from PIL import Image

from bot.render import MAX_EMBEDS_TOTAL, compose
from egaku.config import Config
from egaku.i18n import ENGLISH_VOICE
from tests.agent.test_agent import PROMPT
from tests.bot.harness import running_bot, settled
from tests.bot.test_chat import app_for, channel_post
from tests.bot.test_conversation import live
from tests.bot.test_imagine import callback_of, followup_of
from tests.fakes.discord import BOT_ID, CHANNEL_ID, FakeDiscord, Fault
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.checks.uploads import Upload, check_image
from tools.pictures import RenderedImage

NO_ATTACH = str(((1 << 53) - 1) & ~(1 << 15))  # everything but Attach Files


def image(prompt: str, seed: int = 1) -> RenderedImage:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    return RenderedImage(
        png=buffer.getvalue(), prompt=prompt, negative_prompt="n" * 3000, seed=seed, width=64, height=64, steps=2,
        guidance=5.0, model="tiny", user_words="w" * 3000,
    )  # fmt: skip


def test_embeds_stay_within_discords_limits() -> None:
    images = [image("p" * 5000, seed) for seed in range(4)]  # each prompt alone is over 4096
    (out,) = compose("", images, None, ENGLISH_VOICE)
    assert len(out.embeds) == 4
    assert sum(len(e) for e in out.embeds) <= MAX_EMBEDS_TOTAL
    assert all(len(e.description or "") <= 4096 for e in out.embeds)
    assert all(len(f.value or "") <= 1024 for e in out.embeds for f in e.fields)


async def test_413_upload_is_re_encoded_and_sent(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Call("generate_image", {"prompt": PROMPT, "seed": 3}), Say("Here."))
    fake_discord.faults.append(
        Fault("POST", f"/channels/{CHANNEL_ID}/messages", 413, {"message": "Request entity too large", "code": 40005})
    )
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        await fake_discord.user_message(f"<@{BOT_ID}> draw")
        refused, accepted = await fake_discord.wait_for_requests(channel_post, 2)
    assert refused.files[0].filename == "egaku_3_0.png"
    assert accepted.files[0].filename == "egaku_3_0.jpg"
    assert accepted.json["embeds"][0]["image"]["url"] == "attachment://egaku_3_0.jpg"
    assert Image.open(io.BytesIO(accepted.files[0].data)).format == "JPEG"


async def test_missing_permissions_are_explained_before_any_work(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command(
            "imagine", [{"name": "prompt", "type": 3, "value": "a fox"}], app_permissions=NO_ATTACH
        )
        answer = await fake_discord.wait_for_request(callback_of(interaction))
    assert answer.json["type"] == 4 and answer.json["data"]["flags"] == 64
    assert answer.json["data"]["content"].startswith("I need the Attach Files permission in this channel")
    assert fake_openai.requests == []


async def test_429_with_and_without_via_is_retried_and_delivered_once(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("one"), Say("two"))
    limited = {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}
    headers = {"X-RateLimit-Scope": "user", "Retry-After": "0.05"}
    fake_discord.faults.append(
        Fault("POST", f"/channels/{CHANNEL_ID}/messages", 429, limited, 1, {**headers, "Via": "1.1 google"})
    )
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent) as bot:
        await fake_discord.user_message(f"<@{BOT_ID}> first")
        await settled(bot, fake_discord)
        fake_discord.faults.append(Fault("POST", f"/channels/{CHANNEL_ID}/messages", 429, limited, 1, headers))
        await fake_discord.user_message(f"<@{BOT_ID}> second")
        await settled(bot, fake_discord)
    delivered = [p.json["content"] for p in fake_discord.requests if channel_post(p)]
    assert delivered == ["one", "one", "two", "two"]  # each refused once, then delivered once


async def test_gateway_close_4000_resumes_and_the_bot_still_answers(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("still here"))
    async with app_for(app_config, fake_openai, worker_url) as app:
        from tests.bot.harness import running_bot as run

        async with run(fake_discord, app.agent, reconnect=True):
            await fake_discord.close_gateway(4000)
            await fake_discord.wait_ready(timeout=30)
            await fake_discord.user_message(f"<@{BOT_ID}> are you there?")
            post = await fake_discord.wait_for_request(channel_post)
    assert (fake_discord.identify_count, fake_discord.resume_count) == (1, 1)
    assert post.json["content"] == "still here"


async def test_a_canary_in_secrets_and_errors_never_leaves(
    app_config: Config, fake_openai: FakeOpenAI, fake_discord: FakeDiscord
) -> None:
    canary = "CANARY-7f3a9"
    fake_openai.then(Call("generate_image", {"prompt": "a fox"}), Say("Sorry."))
    async with (
        app_for(app_config, fake_openai, f"http://127.0.0.1:9/{canary}") as app,
        running_bot(fake_discord, app.agent),
    ):
        await fake_discord.user_message(f"<@{BOT_ID}> draw a fox")
        await fake_discord.wait_for_request(channel_post)
    outbound = str([(r.path, r.json) for r in fake_discord.requests])
    assert canary not in outbound  # the worker URL (in the error) stayed in the log
    assert "sk-test-not-a-secret" not in outbound and "sk-test-not-a-secret" not in str(
        fake_openai.requests[-1]["messages"]
    )


async def test_an_expired_token_falls_back_to_the_channel_pinging_only_the_requester(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_discord.faults.append(Fault("POST", "/webhooks/", 401, {"message": "Invalid Webhook Token", "code": 50027}))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent):
        interaction = await fake_discord.slash_command(
            "imagine", [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}]
        )
        await fake_discord.wait_for_request(followup_of(interaction))
        fallback = await fake_discord.wait_for_request(channel_post)
    assert fallback.json["content"] == "<@20>"
    assert fallback.json["allowed_mentions"] == {"parse": [], "users": [20]}  # only the requester
    assert len(fallback.files) == 1  # the image is kept, not lost


async def test_a_replayed_interaction_runs_once(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    options = [{"name": "prompt", "type": 3, "value": "a fox"}, {"name": "raw", "type": 5, "value": True}]
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent) as bot:
        first = await fake_discord.slash_command("imagine", options, interaction_id=4242)
        await fake_discord.slash_command("imagine", options, interaction_id=4242)  # replayed after a RESUME
        await settled(bot, fake_discord)  # both read, and both handlers returned
    callbacks = [r for r in fake_discord.requests if r.path.startswith("/api/v10/interactions/4242/")]
    followups = [r for r in fake_discord.requests if followup_of(first)(r)]
    assert (len(callbacks), len(followups)) == (1, 1)


async def test_5xx_answers_are_ridden_out_and_delivered_once(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord
) -> None:
    fake_openai.then(Say("made it"))
    down = {"message": "Bad Gateway", "code": 0}
    fake_discord.faults.append(Fault("POST", f"/channels/{CHANNEL_ID}/messages", 502, down, times=2))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent) as bot:
        await fake_discord.user_message(f"<@{BOT_ID}> hello")
        await settled(bot, fake_discord)
    posts = [r for r in fake_discord.requests if channel_post(r)]
    assert [p.json["content"] for p in posts] == ["made it"] * 3  # two refused, then delivered once
    assert [m["content"] for m in fake_discord.messages.values() if m.get("content") == "made it"] == ["made it"]


async def test_a_16_mp_upload_is_decoded_off_the_loop_and_acks_stay_fast(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, fake_discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    side = 4096  # 16 MP: the most an upload may have
    ramp = np.add.outer(np.arange(side, dtype=np.uint32), 3 * np.arange(side, dtype=np.uint32)) % 251
    buffer = io.BytesIO()
    Image.fromarray(np.stack([ramp, ramp[::-1], ramp.T], axis=-1).astype(np.uint8)).save(buffer, format="PNG")
    threads: list[bool] = []

    def recording_check(data: bytes, filename: str) -> Upload:
        threads.append(threading.current_thread() is threading.main_thread())
        return check_image(data, filename)

    monkeypatch.setattr("tools.checks.uploads.check_image", recording_check)
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def watchdog() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    fake_openai.then(Say("What a view."))
    async with live(app_config, fake_openai, recorder, fake_discord) as app:
        ticking = asyncio.create_task(watchdog())
        attachment = fake_discord.attachment(buffer.getvalue(), "huge.png")
        await fake_discord.user_message(f"<@{BOT_ID}> look at this", attachments=[attachment])
        sent = loop.time()
        reset = await fake_discord.slash_command("reset", [])
        await fake_discord.wait_for_request(callback_of(reset))
        acked = loop.time() - sent
        reply = await fake_discord.wait_for_request(channel_post, timeout=120)
        ticking.cancel()
        (upload,) = await app.history.mine(f"discord:{CHANNEL_ID}", "20")
    assert threads == [False]  # decoded and re-encoded in a worker thread
    assert reply.json["content"] == "What a view."
    assert (upload.kind, upload.width, upload.height) == ("upload", side, side)
    assert acked < 1.0, f"the /reset ack took {acked:.2f}s while the upload was decoded"
    assert max(lags) < 1.0, f"the loop stalled for {max(lags):.2f}s"


async def test_a_30_second_outage_is_ridden_out_with_backoff_and_delivered_once(
    app_config: Config, fake_openai: FakeOpenAI, worker_url: str, fake_discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    outage = Fault("POST", f"/channels/{CHANNEL_ID}/messages", 503, {"message": "Service Unavailable", "code": 0}, 99)
    waits: list[float] = []

    async def virtual_sleep(seconds: float) -> None:
        # A virtual clock: the outage ends once 30 s of backoff have "passed".
        waits.append(seconds)
        if sum(waits) >= 30:
            outage.times = 0
        await asyncio.sleep(0)

    monkeypatch.setattr("bot.deliver._sleep", virtual_sleep)
    fake_discord.faults.append(outage)
    fake_openai.then(Say("still here"))
    async with app_for(app_config, fake_openai, worker_url) as app, running_bot(fake_discord, app.agent) as bot:
        await fake_discord.user_message(f"<@{BOT_ID}> hello")
        await settled(bot, fake_discord)
    attempts = [r for r in fake_discord.requests if channel_post(r)]
    assert len(attempts) == len(waits) + 1 <= 8  # bounded: no tight loop
    assert [m["content"] for m in fake_discord.messages.values() if m.get("content") == "still here"] == [
        "still here"
    ]  # delivered, once
    assert all(later > earlier for earlier, later in itertools.pairwise(waits[:5]))  # backing off
    assert sum(waits[:-1]) < 30 <= sum(waits) and max(waits) <= 30 * 1.25
