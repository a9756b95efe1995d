"""Zoom out and pan through the image service: what is refused before the worker, and in whose words."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from egaku.errors import EditNotPossible
from tests.fakes.recording_worker import RecordingWorker
from tests.tools.test_upscaling import KING, drawn
from tools.backends.worker_client import WorkerClient
from tools.pictures import Picture
from tools.service.images import ImageService
from tools.service.outpainting import CANNOT_OUTPAINT, ZOOM_ADDS_NOTHING, check_zoom
from tools.service.requests import Edit, Refused, Requester
from tools.stores.history import History


def sized(width: int, height: int) -> Picture:
    return Picture(
        prompt=KING, negative_prompt=None, seed=1, width=width, height=height, steps=2, model="tiny", user_words=KING
    )


@pytest.mark.parametrize(
    ("size", "zoom", "adds"),
    [((64, 64), 1.0, False), ((64, 64), 1.1, False), ((64, 64), 1.13, True), ((64, 40), 1.1, False),
     ((100, 64), 1.1, True), ((1024, 1024), 1.01, True), ((1024, 1024), 2.0, True)],
)  # fmt: skip
def test_a_zoom_that_adds_no_size_step_is_refused_early(size: tuple[int, int], zoom: float, adds: bool) -> None:
    if adds:
        check_zoom(sized(*size), Edit("x", KING, zoom=zoom))
        return
    with pytest.raises(EditNotPossible) as refused:
        check_zoom(sized(*size), Edit("x", KING, zoom=zoom))
    assert refused.value.text == ZOOM_ADDS_NOTHING
    check_zoom(sized(*size), Edit("x", KING, pan="left"))  # a pan always paints a third


async def test_what_the_worker_would_refuse_is_said_in_the_users_words(
    recorder: RecordingWorker, tmp_path: Path
) -> None:
    history = await History.open(tmp_path / "h.sqlite", tmp_path / "files")
    picture = await drawn(history)
    # Drawn by a preset the worker no longer has (or one without inpainting): the worker answers 400 on `model`.
    gone = await drawn(history, model="retired-preset")
    alice = Requester(user_id="alice", user_words="wider", conversation="c")
    async with aiohttp.ClientSession() as session:
        service = ImageService(WorkerClient(session, recorder.url), history=history)
        nothing = await service.edit(alice, Edit(picture.id, KING, zoom=1.1))
        assert recorder.received == []  # refused before the worker
        cannot = await service.edit(alice, Edit(gone.id, KING, pan="up"))
    assert nothing == Refused(ZOOM_ADDS_NOTHING)
    assert cannot == Refused(CANNOT_OUTPAINT)
    assert str(CANNOT_OUTPAINT) == "The model that drew this picture can't zoom out or pan here."
    (sent,) = recorder.received
    assert (sent.path, sent.fields["pan"], sent.fields["model"]) == ("/v1/images/edits", "up", "retired-preset")
    await history.close()
