"""The pictures a job reads, from the history: read when the job is planned, read again by id when it resumes.

A planned job (`tools.service.requests.Planned`) names the pictures its model reads by their history ids,
in order, and carries their files beside them; the journal keeps only the ids (the history has the files),
so a job sent again after a restart reads every one of them again here, in the same order.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import replace

from egaku.errors import UnknownImage
from egaku.i18n import Text
from tools.pictures import ImageKind, edited
from tools.service.requests import Planned
from tools.stores.history import Generation, History
from worker.protocol import EditRequest


async def pngs(history: History, pictures: Sequence[Generation]) -> tuple[bytes, ...]:
    """The pictures' files, in order (disk reads: off the loop)."""
    return tuple(await asyncio.to_thread(lambda: [history.png(g) for g in pictures]))


async def edit_of(
    history: History, request: EditRequest, kind: ImageKind, parent: Generation, reply: str | None, notice: Text | None
) -> Planned:
    """An edit of one picture of the history, planned with its file."""
    files = await pngs(history, [parent])
    return Planned(request, kind, edited(parent.id), (parent.id,), files, reply=reply, notice=notice)


async def read_again(history: History, planned: Planned, job_id: str) -> Planned:
    """A journaled job with the files of the pictures it reads, from the history again (after a restart)."""
    found = [await history.get(picture_id) for picture_id in planned.pictures]
    pictures = [g for g in found if g is not None]
    if len(pictures) < len(found):
        raise UnknownImage(f"a picture read by job {job_id} is gone from the history")
    files = await pngs(history, pictures)
    request = planned.request
    if not isinstance(request, EditRequest):  # a generation from pictures carries them in its request
        request = request.model_copy(update={"references": encoded(files)})
    return replace(planned, request=request, pngs=files)


def encoded(files: Sequence[bytes]) -> list[str]:
    """Pictures as a generation's `references` carry them: base64, in order."""
    return [base64.b64encode(png).decode("ascii") for png in files]
