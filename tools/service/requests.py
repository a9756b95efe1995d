"""What the image service takes and gives: who asks, what they ask for, and the typed outcome.

Outcome
├── Drawn     the images, recorded in the history (with their ids when there is one)
├── Refused   a request the asker can fix (bad bounds, unknown image, blocked words);
│             `reason` is a fixed text, safe to show; `invalid` marks broken arguments
└── Failed    the service could not do it (worker down, busy, failed, cancelled);
              `error` is an EgakuError that `egaku.errors.report` turns into user text
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from egaku.errors import EgakuError
from egaku.i18n import ENGLISH, Text
from tools.pictures import ImageKind, Lineage, RenderedImage
from worker.protocol import EditRequest, GenerationRequest, Pan, ProgressEvent, ReferenceRole

# "reference": a new picture that keeps a subject (a character, an object) from the pictures it reads.
EditMode = Literal["regenerate", "subtle", "strong", "region", "instruct", "reference"]


@dataclass(frozen=True)
class Waiting:
    """A job that waits before it reaches the worker: in its server's line (`place`), or for the worker to return."""

    reason: Literal["line", "worker"]
    place: int | None = None  # 1 = next in line
    eta_s: float | None = None


class JobWatch(Protocol):
    """Follows a job while the GPU works on it (the bot shows a status message with a cancel button)."""

    async def started(self, job_id: str) -> None:
        """The job was accepted (it may still wait in its server's line)."""
        ...

    async def progress(self, job_id: str, event: ProgressEvent | Waiting) -> None:
        """A place in line, a queue position, a step, an ETA or a preview arrived."""
        ...

    async def finished(self, job_id: str) -> None:
        """The job ended (done, failed or cancelled)."""
        ...


@dataclass(frozen=True)
class ImageOptions:
    """What a user chose explicitly (e.g. /imagine's options); these win over the model's choices."""

    negative_prompt: str | None = None
    aspect: str | None = None
    seed: int | None = None
    style: str | None = None
    count: int | None = None
    model: str | None = None
    best_of: int | None = None

    def apply(self, fields: dict[str, object]) -> dict[str, object]:
        """Request fields with the user's explicit choices laid over them."""
        chosen = {
            "negative_prompt": self.negative_prompt,
            "aspect": self.aspect,
            "seed": self.seed,
            "style": self.style,
            "n": self.count,
            "model": self.model,
            "best_of": self.best_of,
        }
        return {**fields, **{k: v for k, v in chosen.items() if v is not None}}


def turn_key(kind: Literal["message", "interaction"], source_id: int | str) -> str:
    """The journal's name for a request: the Discord message or interaction it came as."""
    return f"{kind}:{source_id}"


@dataclass(frozen=True)
class AnswerTo:
    """Where the answer to a request goes, as the front end that took it describes it (kept in the job journal).

    `turn` names the request: every job made for it shares it, and it is answered once. A reply
    to a message names the message; an interaction's followup names the interaction and its
    token, which Discord honours for 15 minutes after `asked_at`.
    """

    turn: str  # "message:<id>", "interaction:<id>"...
    channel_id: str
    user_id: str
    message_id: str | None = None  # the user's message the answer replies to
    interaction_id: str | None = None
    application_id: str | None = None
    token: str | None = None  # the interaction's token (a 15-minute secret; forgotten once answered)
    original_id: str | None = None  # the interaction's deferred response, which its answer fills
    asked_at: float = 0.0  # wall-clock time the request arrived
    locale: str = ENGLISH  # the language the answer speaks, chosen when it was asked (`bot.language`)
    in_channel: bool = True  # whether the bot may post in the channel (not where a user's install is no member)


@dataclass(frozen=True)
class Requester:
    """Who asks for an image, where, and under which rules: the input of every image operation.

    The LLM tools, the buttons, `/imagine raw` and the CLI all describe their caller with this,
    so that caps, safety, audit and the user's explicit options apply the same way everywhere.
    """

    user_id: str
    user_words: str
    conversation: str = ""
    guild_id: str | None = None
    channel_id: str | None = None
    source_id: str | None = None  # the Discord message or interaction this answers (audit)
    reply_to: str | None = None  # the Discord message the user replied to ("edit this")
    options: ImageOptions = field(default_factory=ImageOptions)
    watch: JobWatch | None = None
    nsfw: bool = False  # NSFW allowed here: no blocklist, no worker safety check
    guild_cap: int | None = None  # the server's own cap on images in flight (/settings server)
    best_of: int | None = None  # the server's default number of best-of candidates (/settings server)
    # Where the answer goes: a job with one is written to the journal before it is sent, and survives a restart.
    answer: AnswerTo | None = None
    job_id: str | None = None  # the job's id (the worker's idempotency key); None: a fresh one


@dataclass(frozen=True)
class Draw:
    """A new picture from a description (the user's options win over these fields)."""

    prompt: str
    negative_prompt: str | None = None
    aspect: str | None = None
    seed: int | None = None
    # The prompt's language, when the LLM wrote it: checked against the languages the model reads.
    language: str | None = None
    best_of: int | None = None  # candidates to pick the best from; None: the server's or the bot's default
    # A new picture drawn from these pictures (/blend): references like Edit.ref, in order ("picture 1"...).
    references: tuple[str, ...] = ()
    role: ReferenceRole = "subject"  # what the references give: their subject, or only their style
    reply: str | None = None  # the model's words posted with the picture (kept for a restart)


@dataclass(frozen=True)
class Edit:
    """A change to an earlier image, found by `ref` (an id, "last", "reply", an ordinal, words)."""

    ref: str
    prompt: str
    # None: the instruction-edit model when the worker has one (a Kontext preset), else "regenerate".
    mode: EditMode | None = None
    target: str | None = None  # region mode: the part to repaint, in words
    seed: int | None = None  # None keeps the parent's seed
    scale: float = 1.0  # > 1 enlarges the result (the creative upscale button)
    language: str | None = None  # as Draw.language
    # Further pictures the model reads, after `ref` ("picture 2"...): references like `ref`, each resolved alike.
    references: tuple[str, ...] = ()
    role: ReferenceRole = "subject"  # what the further pictures give: their subject, or only their style
    reply: str | None = None  # as Draw.reply
    # Outpainting (the picture's own model paints past its edges; `mode` does not apply): `zoom` (1.0-2.0)
    # centres it on a canvas that many times larger; `pan` slides the view a third that way.
    zoom: float | None = None
    pan: Pan | None = None


@dataclass(frozen=True)
class Upscale:
    """An earlier image, found by `ref` as an Edit's, enlarged 2x or 4x by the backend's upscaler: nothing redrawn."""

    ref: str
    scale: int = 2
    # Drawn instead when the backend has no upscaler (the buttons' creative upscale); None: the backend refuses.
    fallback: Edit | None = None


@dataclass(frozen=True)
class Planned:
    """A job ready to send: the validated request, the pictures the model reads, and what the history records."""

    request: GenerationRequest | EditRequest  # an EditRequest goes to /edits with `pngs`, the edited one first
    kind: ImageKind
    parents: Lineage = ()  # what the new picture is made from, in order, with their roles (the history's lineage)
    # The history ids of the pictures the model reads, in order: an edit's picture first, then its references;
    # a generation's references (a blend). Journaled by id: a restart reads them again from the history.
    pictures: tuple[str, ...] = ()
    pngs: tuple[bytes, ...] = ()  # those pictures (never journaled: the history has them)
    reply: str | None = None  # the model's words posted with the picture
    notice: Text | None = None  # a fixed text the user reads with the picture (Drawn.notice)


@dataclass(frozen=True)
class Drawn:
    """The images, in order, and a fixed text the user must read with them (an approximate likeness)."""

    images: tuple[RenderedImage, ...]
    notice: Text | None = None


@dataclass(frozen=True)
class Refused:
    """A request the asker can fix; `reason` is a fixed text, safe to show the user (the model reads its English)."""

    reason: Text
    invalid: bool = False  # the arguments broke a bound (the model may fix and call again)
    detail: str | None = None  # for the model only: the service's own words on what to change


@dataclass(frozen=True)
class Failed:
    """The service could not make the image; not the asker's fault."""

    error: EgakuError
    job_id: str | None = None  # the journaled job that failed (a Retry button names it)


Outcome = Drawn | Refused | Failed
