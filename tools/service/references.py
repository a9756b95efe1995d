"""Pictures drawn from other pictures: which preset reads them, how many, and what a request from them carries.

"Put the cat from my upload into the picture you drew" edits one picture (the canvas, "picture 1")
while the model reads others beside it ("picture 2"...); "the same squirrel king, now riding a horse"
and /blend draw a new picture from pictures alone. Both go to the one preset that reads several
pictures (`ReferenceModel`, picked once from the config: `egaku.config.Config.reference_model`).
Every picture named is resolved through the history's scoped rule (`History.resolve`), so a
reference reaches only what the asker may see here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from egaku.errors import EditNotPossible, UnknownImage
from egaku.i18n import _
from tools.pictures import OWN_SIZE_KINDS, ImageKind, Parent, ParentRole
from tools.service.reading import encoded
from tools.service.requests import Draw, Edit, EditMode, ImageOptions
from tools.stores.history import Generation, History, Viewer
from worker.protocol import EditRequest, GenerationRequest, ReferenceRole

APPROXIMATE_TEXT = _(
    "(No model here reads reference pictures, so I drew this from the same seed with the new description: "
    "the likeness is approximate.)"
)
NO_BLEND_TEXT = _("Blending pictures needs a model that reads several pictures, and none is set up here.")
# What the model is told beside a drawing whose references could not be read (the user reads APPROXIMATE_TEXT).
APPROXIMATE_NOTE = "No model here reads reference pictures: drawn from the same seed, so the likeness is approximate."


@dataclass(frozen=True)
class ReferenceModel:
    """The preset that draws from several pictures, and how many it reads."""

    name: str
    edit_pictures: int  # in one edit, the edited picture first
    draw_pictures: int  # in a new picture drawn from pictures alone

    def check(self, count: int, editing: bool) -> None:
        """Refuse, before any work, more pictures than the preset reads (the worker checks again)."""
        limit = self.edit_pictures if editing else self.draw_pictures
        if count > limit:
            first = _(", the edited one first") if editing else ""
            raise EditNotPossible(
                _("The model here reads at most {limit} pictures at once{first}; this asked for {count}.",
                  limit=limit, first=first, count=count)
            )  # fmt: skip


@dataclass(frozen=True)
class FromPictures:
    """A picture drawn by a model that reads other pictures: which, in order, and how."""

    prompt: str
    model: str
    kind: ImageKind
    references: tuple[Generation, ...]  # read after the canvas, in order
    canvas: Generation | None = None  # the picture edited ("picture 1"); None: a new picture from the references
    role: ReferenceRole = "subject"
    seed: int | None = None  # None: the first picture's seed (a drawn one's), else a fresh one
    aspect: str | None = None  # a new picture's shape; None: the first picture's size, or the preset's
    size: str | None = None  # a size of its own (a reroll keeps the picture's); wins over `aspect`
    target: str | None = None  # region edits: the part to repaint, in words
    strength: float | None = None  # img2img edits (subtle, strong); None: the model's own edit
    language: str | None = None  # the prompt's language, when the LLM wrote it

    @property
    def pictures(self) -> tuple[Generation, ...]:
        """Every picture the model reads, in order: the canvas first."""
        return (self.canvas, *self.references) if self.canvas is not None else self.references

    @property
    def parents(self) -> tuple[Parent, ...]:
        """The new picture's lineage: the canvas edited, then each reference with its role."""
        taken: ParentRole = "style" if self.role == "style" else "reference"
        edited = (Parent(self.canvas.id, "edited"),) if self.canvas is not None else ()
        return (*edited, *(Parent(g.id, taken) for g in self.references))

    def request(
        self, pngs: Sequence[bytes], user: str, safety_check: bool, options: ImageOptions
    ) -> GenerationRequest | EditRequest:
        """The worker request, validated: an edit whose further `image[]` files are the references, or a new
        picture with `references` (egaku's extension on generations). The pictures travel in `pngs`, in order."""
        first = self.pictures[0]
        seeded = first.kind != "upload"  # an upload has no seed
        drawn = first.kind not in OWN_SIZE_KINDS  # an upload or an upscale is drawn at the model's own size
        fields: dict[str, object] = {
            "prompt": self.prompt,
            "model": self.model,
            "seed": self.seed if self.seed is not None or not seeded else first.seed,
            "user": user,
            "safety_check": safety_check or None,
            "reference_role": "style" if self.role == "style" else None,
        }
        if self.canvas is not None:
            fields.update(size=self.size or (size_of(first) if drawn else None), negative_prompt=first.negative_prompt,
                          strength=self.strength, mask_prompt=self.target)  # fmt: skip
            return EditRequest.model_validate({k: v for k, v in fields.items() if v is not None})
        aspect = self.aspect or options.aspect
        # A new scene keeps a drawn picture's size; a blend takes the shape asked for (or the preset's).
        keeps = drawn and aspect is None and self.kind != "blend"
        size = self.size or (size_of(first) if keeps else None)
        fields.update(size=size, aspect=None if size else aspect, negative_prompt=options.negative_prompt,
                      references=encoded(pngs))  # fmt: skip
        return GenerationRequest.model_validate({k: v for k, v in fields.items() if v is not None})


def size_of(picture: Generation) -> str:
    """A picture's own size on the wire."""
    return f"{picture.width}x{picture.height}"


async def blend_job(history: History, viewer: Viewer, model: ReferenceModel | None, request: Draw) -> FromPictures:
    """A new picture from pictures alone (/blend), by the preset that reads several; refused where there is none."""
    if model is None:
        raise EditNotPossible(NO_BLEND_TEXT)
    pictures = await gather(history, request.references, viewer)
    model.check(len(pictures), editing=False)
    return FromPictures(request.prompt, model.name, "blend", tuple(pictures), role=request.role, seed=request.seed,
                        aspect=request.aspect, language=request.language)  # fmt: skip


async def edit_job(
    history: History,
    viewer: Viewer,
    model: ReferenceModel | None,
    request: Edit,
    parent: Generation,
    mode: EditMode,
    strengths: Mapping[str, float],
) -> FromPictures | None:
    """What an edit reads beside its picture, when it reads any; None for an edit of one picture.

    Regenerating a picture drawn from pictures draws from the same ones again, with its own model
    and kind (a reroll of a blend: the same references, a new seed). An edit with further pictures,
    or mode "reference" (a new picture keeping a subject from them), goes to the preset that reads
    several; without one it is None, and the caller draws the same seed with the new description.
    """
    if mode == "regenerate" and drawn_from_pictures(parent):
        canvas, others = await again(history, parent, viewer)
        if model is not None and parent.model == model.name:
            model.check(len(others) + (canvas is not None), editing=canvas is not None)
        strength = strengths.get(parent.kind) if canvas is not None else None
        seed = parent.seed if request.seed is None else request.seed
        return FromPictures(request.prompt, parent.model, parent.kind, tuple(others), canvas=canvas,
                            role=role_of(parent), seed=seed, size=size_of(parent), strength=strength,
                            language=request.language)  # fmt: skip
    others = await gather(history, request.references, viewer, (parent,))
    if model is None or not (others or mode == "reference"):
        return None
    if request.mode == "region" and not request.target:
        raise EditNotPossible(_("a region edit needs `target`: the words for the part to change"))
    new = request.mode == "reference"  # every picture is a reference; there is no canvas
    model.check(1 + len(others), editing=not new)
    return FromPictures(
        request.prompt, model.name, request.mode or "reference", (*((parent,) if new else ()), *others),
        canvas=None if new else parent, role=request.role, seed=request.seed, target=request.target,
        strength=strengths.get(request.mode or ""), language=request.language,
    )  # fmt: skip


async def gather(
    history: History, refs: Iterable[str], viewer: Viewer, taken: Iterable[Generation] = ()
) -> list[Generation]:
    """Each reference resolved through the history's scoped rule, in order; a picture already taken counts once."""
    seen = {g.id for g in taken}
    found = []
    for ref in refs:
        picture = await history.resolve(ref, viewer)
        if picture.id not in seen:
            seen.add(picture.id)
            found.append(picture)
    return found


async def again(history: History, picture: Generation, viewer: Viewer) -> tuple[Generation | None, list[Generation]]:
    """The canvas and references a picture was drawn from, each reached again by this viewer (a reroll)."""
    parents = [await reach(history, p.id, viewer) for p in picture.parents]
    edited = {p.id for p in picture.parents if p.role == "edited"}
    canvas = next((g for g in parents if g.id in edited), None)
    return canvas, [g for g in parents if g.id not in edited]


async def reach(history: History, picture_id: str, viewer: Viewer) -> Generation:
    """A picture by its exact id, if this viewer may see it here (the scoped rule); else the one refusal."""
    picture = await history.get(picture_id)
    if picture is None or not viewer.may_see(picture):
        raise UnknownImage("a parent of that picture is not reachable here")
    return picture


def drawn_from_pictures(picture: Generation) -> bool:
    """Whether a model read other pictures to draw this one (a reference edit, a reference drawing, a blend)."""
    return any(p.role != "edited" for p in picture.parents)


def role_of(picture: Generation) -> ReferenceRole:
    """What a picture's references gave it."""
    return "style" if any(p.role == "style" for p in picture.parents) else "subject"
