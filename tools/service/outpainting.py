"""Zoom out and pan, as the image service asks the worker for them: the fields, and what is refused early."""

from __future__ import annotations

from egaku.errors import EditNotPossible, WorkerRejected
from egaku.i18n import _
from tools.pictures import ImageKind, Picture
from tools.service.requests import Edit

# The smallest size step of any family: a zoom that adds no step on either side paints nothing anywhere.
SIZE_STEP = 8

ZOOM_ADDS_NOTHING = _("At this picture's size, that zoom adds nothing to paint. Try a little more, such as 1.2.")
CANNOT_OUTPAINT = _("The model that drew this picture can't zoom out or pan here.")


def outpaints(request: Edit) -> bool:
    """Whether an edit paints past the picture's edges (zoom or pan)."""
    return request.zoom is not None or request.pan is not None


def outpaint_kind(request: Edit) -> ImageKind:
    """The history's kind for a zoom or a pan."""
    return "zoom" if request.zoom is not None else "pan"


def check_zoom(parent: Picture, request: Edit) -> None:
    """Refuse, in the user's words, a zoom the worker would refuse for painting nothing (it checks again)."""
    if request.zoom is None:
        return
    wider = int(parent.width * request.zoom) // SIZE_STEP * SIZE_STEP > parent.width
    taller = int(parent.height * request.zoom) // SIZE_STEP * SIZE_STEP > parent.height
    if not (wider or taller):
        raise EditNotPossible(ZOOM_ADDS_NOTHING)


def outpaint_fields(request: Edit) -> dict[str, object]:
    """The request fields of a zoom or a pan; the worker sizes the canvas from the picture, so no size."""
    return {"size": None, "zoom": request.zoom, "pan": request.pan}


def cannot_outpaint(kind: ImageKind, exc: WorkerRejected) -> bool:
    """Whether the worker refused a zoom or a pan for its model: the picture's own preset cannot paint past edges."""
    return kind in ("zoom", "pan") and exc.param == "model"
