"""The worker's refusals a user can act on, said in the user's words (tools/service/rejections.py)."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
from PIL import Image

from egaku.errors import EditNotPossible
from egaku.i18n import Catalogs
from tests.conftest import recorded_worker, tiny_worker_settings
from tools.backends.worker_client import WorkerClient
from tools.service.images import ImageService
from tools.service.requests import Edit, Refused, Requester
from tools.stores.history import History
from worker.settings import world_preset
from worker.world.caption import parse_caption

CAPTION = "a large red circle in the center, on a white background"


async def test_a_part_the_worker_cannot_find_is_said_in_the_users_words(worker_cache: Path, tmp_path: Path) -> None:
    settings = tiny_worker_settings(worker_cache, models={"world": world_preset()}, default_model="world")
    buffer = io.BytesIO()
    Image.fromarray(parse_caption(CAPTION).render()).save(buffer, format="PNG")
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    picture = await history.add(
        buffer.getvalue(), conversation="c", user_id="alice", user_words="赤い丸", prompt=CAPTION,
        negative_prompt=None, seed=7, width=64, height=64, steps=12, model="world", kind="generate",
    )  # fmt: skip
    alice = Requester(user_id="alice", user_words="紫の三角を青にして", conversation="c")
    async with recorded_worker(settings, "world") as (_engine, recorder), aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), history=history)
        # The same caption, and words naming nothing in the picture: the world masker finds nothing to repaint.
        outcome = await service.edit(alice, Edit(picture.id, CAPTION, mode="region", target="the purple triangle"))
    (sent,) = recorder.received
    assert (sent.path, sent.fields["mask_prompt"]) == ("/v1/images/edits", "the purple triangle")
    assert isinstance(outcome, Refused) and not outcome.invalid
    assert outcome.reason == EditNotPossible(outcome.reason).text
    english = str(outcome.reason)
    assert english == (
        "I couldn't find “the purple triangle” in that picture. Tell me which part to change, for example "
        "“the red circle”, or reply to the picture you mean."
    )
    japanese = Catalogs.load().voice("ja")(outcome.reason)
    assert "the purple triangle" in japanese and japanese != english
    assert await history.mine("c", "alice") == [picture]  # nothing new was kept
    await history.close()
