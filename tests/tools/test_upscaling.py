"""The upscaler behind the plain upscale buttons: what the worker is asked, how often, and what is refused first."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

from egaku.errors import Blocked, InvalidImageRequest, UnknownImage, WorkerRejected
from egaku.i18n import Text
from tests.conftest import serve
from tests.fakes.recording_worker import RecordingWorker
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService
from tools.service.requests import Refused, Requester, Upscale
from tools.service.upscaling import UpscalerCheck
from tools.stores.history import Generation, History

KING = "a squirrel king with a golden crown"


def png(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, format="PNG")
    return buffer.getvalue()


async def drawn(history: History, user: str = "alice", conversation: str = "c", model: str = "tiny") -> Generation:
    """A picture of `user`'s in the history, as the worker would have drawn it."""
    return await history.add(
        png(), conversation=conversation, user_id=user, user_words=KING, prompt=KING, negative_prompt=None,
        seed=7, width=64, height=64, steps=2, model=model, kind="generate",
    )  # fmt: skip


async def test_the_worker_is_asked_about_its_upscaler_at_most_once_a_minute() -> None:
    said: list[str | None] = [None]
    asked: list[str] = []

    async def healthz(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"status": "ok", "models": ["tiny"], "upscaler": said[0]})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner, url = await serve(app)
    now = [1000.0]
    async with aiohttp.ClientSession() as session:
        check = UpscalerCheck(WorkerClient(session, url), ttl_s=60.0, clock=lambda: now[0])
        first = await check.name()
        said[0] = "4x-UltraSharp.safetensors"  # the operator adds one
        now[0] += 59.0
        still = await check.name()
        now[0] += 1.0
        then = await check.name()
        await runner.cleanup()  # the worker goes away: the last answer stands, and it is not asked on every post
        now[0] += 60.0
        gone = await check.name()
        now[0] += 30.0
        later = await check.name()
    assert [first, still, then, gone, later] == [None, None, "4x-UltraSharp.safetensors"] + [
        "4x-UltraSharp.safetensors"
    ] * 2
    assert asked == ["/healthz", "/healthz"]


async def test_an_upscale_goes_through_the_reference_rule_and_the_blocklist_first(
    recorder: RecordingWorker, tmp_path: Path
) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    mine, bobs = await drawn(history), await drawn(history, "bob", "elsewhere")
    alice = Requester(user_id="alice", user_words="bigger please", conversation="c")
    async with aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), history=history, blocklist=("crown",))
        blocked = await service.upscale(alice, Upscale(mine.id, 2))
        unseen = await service.upscale(alice, Upscale(bobs.id, 2))
        open_service = ImageService(WorkerClient(session, recorder.url), history=history)
        assert recorder.received == []  # neither reached the worker
        # This worker has no upscaler, and no fallback was asked for: the worker's refusal, in the user's words.
        refused = await open_service.upscale(alice, Upscale(mine.id, 4))
        invalid = await open_service.upscale(alice, Upscale(mine.id, 3))
    assert blocked == Refused(Text(Blocked.user_text))
    assert unseen == Refused(Text(UnknownImage.user_text))
    assert refused == Refused(Text(WorkerRejected.user_text), detail=(
        "this worker has no upscaler: its operator sets [worker] upscaler to a weights file"
    ))  # fmt: skip
    assert isinstance(invalid, Refused) and invalid.invalid and "scale is 3" in (invalid.detail or "")
    assert invalid.reason == Text(InvalidImageRequest.user_text)  # the model reads the detail; the user, this
    (sent,) = recorder.received
    assert (sent.path, set(sent.fields), sent.fields["scale"]) == ("/v1/images/upscales", {"scale", "job_id"}, "4")
    audit = await history.audit_log("alice")
    assert [a.outcome for a in audit] == ["Blocked", "UnknownImage", "WorkerRejected", "invalid"]
    await history.close()
