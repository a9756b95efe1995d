"""The worker's refusals that a user can act on, said in the user's words; any other stays a WorkerRejected.

The worker's own message ("couldn't find 'the yellow triangle' in the image") is written for the
log and for the model; the user reads a fixed, translated text that says what to do next.
"""

from __future__ import annotations

from egaku.errors import EditNotPossible, Refusal, WorkerRejected
from egaku.i18n import _
from tools.service.outpainting import CANNOT_OUTPAINT, cannot_outpaint
from tools.service.requests import Planned


def in_users_words(planned: Planned, exc: WorkerRejected) -> Refusal:
    """The refusal to raise for `exc`, the worker's answer to `planned`."""
    if cannot_outpaint(planned.kind, exc):
        return EditNotPossible(CANNOT_OUTPAINT)
    words = getattr(planned.request, "mask_prompt", None)
    if exc.param == "mask_prompt" and words:
        return EditNotPossible(
            _("I couldn't find “{words}” in that picture. Tell me which part to change, for example “the red "
              "circle”, or reply to the picture you mean.", words=words)
        )  # fmt: skip
    return exc
