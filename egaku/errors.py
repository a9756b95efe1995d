"""egaku's errors, in one tree, and the one place that turns them into user messages.

    EgakuError
    ├── ConfigError              the config file is wrong (names the key)
    ├── Refusal                  the asker can fix it: the fixed text says how (the model may retry)
    │   ├── InvalidImageRequest  tool arguments broke a bound
    │   │   ├── TooManyCandidates  best_of above this bot's cap, or below 1
    │   │   └── WrongLanguage      the prompt is in a language the drawing model does not read
    │   ├── UnknownImage         a reference that matches no picture the asker may use here
    │   ├── EditNotPossible      an edit this setup cannot do as asked (no target, no edit model)
    │   ├── Blocked              the prompt breaks this channel's safety policy
    │   ├── WorkerRejected       the image service refused the request (4xx)
    │   ├── BadUpload            an attachment that is not a usable image
    │   ├── EmptyMessage         nothing to answer: only whitespace or zero-width characters
    │   └── MessageTooLong       the user's message is over the input cap
    └── Failure                  the service could not do it; not the asker's doing
        ├── TooBusy              a cap on pictures in flight was reached (per user, server or bot)
        ├── WorkerBusy           the image service or its GPU is saturated (503, out of memory)
        ├── WorkerUnavailable    the image service cannot be reached or is starting
        ├── WorkerFailed         the image service failed (5xx)
        │   └── WorkerLost       the connection broke mid-job (reset, cut stream, malformed events)
        ├── JobCancelled         the user cancelled the job
        ├── LLMUnavailable       the language model failed, timed out, or sent a body that is not an answer
        ├── LLMUnclear           the model's answer was unusable twice (cut-off tool call, empty, leaked text)
        └── PostFailed           the picture was made but Discord would not take the message

The worker is its own deployable with its own wire errors (`worker/errors.py`); `from_answer`
maps any image service's answer (the worker's, or OpenAI's Images API) into this tree, once.

Users only ever see the fixed texts below plus a short error id; the details (an upstream
body, a traceback) stay in the log under that id. Each class's `user_text` is its English text,
the catalogs' msgid; `text` is the same not yet in a language, which `user_message` speaks in
the asker's language (`egaku.i18n.Voice`). `detail` carries a message for the model
to act on, from an answer whose shape the service guarantees, never a raw body.
"""

from __future__ import annotations

import logging
import re
import secrets

from pydantic import ValidationError

from egaku.i18n import ENGLISH_VOICE, N_, Text, Voice, _

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What a service's error message may echo of a request's credentials: API keys, bearer tokens, long secrets.
_SECRETS = re.compile(r"(?i)bearer\s+\S+|\bsk-[\w*-]{6,}|\b[\w-]{32,}\b")


class EgakuError(Exception):
    """Base class of every error egaku expects."""

    user_text = N_("Something went wrong on my side.")
    # Whether the user's message carries an error id (pointless for "busy" or "cancelled").
    with_error_id = True
    _text: Text | None = None

    @property
    def text(self) -> Text:
        """The user text, not yet in a language (`user_text` is its English)."""
        return self._text if self._text is not None else Text(self.user_text)

    def _says(self, text: Text) -> None:
        """Set an instance's own user text (one with values, or chosen where it is raised)."""
        self._text = text
        self.user_text = str(text)


class ConfigError(EgakuError):
    """The configuration is invalid; the message names the key."""

    user_text = N_("The bot is misconfigured.")


class Refusal(EgakuError):
    """Something the asker can fix; `user_text` says what, and `detail` (if any) tells the model more."""

    detail: str | None = None


class Failure(EgakuError):
    """Something the service could not do; the asker can only try again later."""


class InvalidImageRequest(Refusal):
    """An image request broke a bound (size, steps, seed...)."""

    user_text = N_("That image request is outside what I can draw.")


class TooManyCandidates(InvalidImageRequest):
    """best_of asked for more candidates than this bot renders (or fewer than one)."""

    with_error_id = False

    def __init__(self, asked: int, cap: int) -> None:
        super().__init__(f"best_of {asked} is outside 1..{cap}")
        self._says(_("I can pick the best of 1 to {cap} pictures here; you asked for {asked}.", cap=cap, asked=asked))


class WrongLanguage(InvalidImageRequest):
    """The LLM wrote the prompt in a language the drawing model does not read (it is asked to rewrite it)."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self._says(text)


class UnknownImage(Refusal):
    """A reference that matches no picture the asker may use here (it never says whether one exists elsewhere)."""

    user_text = N_("I can't find that picture here. Reply to it, or give its id.")


class EditNotPossible(Refusal):
    """An edit this setup cannot do as asked; `user_text` says what to change."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self._says(text)


class Blocked(Refusal):
    """The final prompt breaks this channel's safety policy."""

    user_text = N_("That isn't allowed in this channel.")


class WorkerRejected(Refusal):
    """The image service refused the request as invalid (its message, if well-formed, is the model's `detail`)."""

    user_text = N_("The image service refused that request.")

    def __init__(self, message: str, *, detail: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail
        self.param = param


class BadUpload(Refusal):
    """An attachment that is not a usable image; `user_text` says why, politely."""

    with_error_id = False

    def __init__(self, reason: Text) -> None:
        super().__init__(str(reason))
        self._says(reason)


class EmptyMessage(Refusal):
    """The message has no words once whitespace and zero-width characters are gone."""

    user_text = N_("Hi! Tell me what to draw, for example: `@egaku draw a squirrel king on a throne`.")
    with_error_id = False


class MessageTooLong(Refusal):
    """The user's message is longer than the bot reads."""

    with_error_id = False

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"message of {length} characters, over the cap of {limit}")
        self._says(
            _("That message is too long for me ({length} characters). Please keep it under {limit}.", length=length,
              limit=limit)
        )  # fmt: skip


class TooBusy(Failure):
    """A cap was reached; `user_text` says which, politely."""

    with_error_id = False

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self._says(text)


class WorkerBusy(Failure):
    """The worker is saturated or ran out of GPU memory."""

    user_text = N_("The image service is busy right now. Please try again in a minute, or ask for a smaller size.")


class WorkerUnavailable(Failure):
    """The worker cannot be reached."""

    user_text = N_("The image service is not reachable right now. Please try again shortly.")


class WorkerFailed(Failure):
    """The worker failed while rendering."""

    user_text = N_("The image service failed on that picture.")


class WorkerLost(WorkerFailed):
    """The connection to the worker broke while it worked: reset, cut mid-stream, or unreadable events."""

    user_text = N_("The image service stopped while drawing your picture. Please try again.")


class JobCancelled(Failure):
    """The user cancelled the job."""

    user_text = N_("Cancelled.")
    with_error_id = False


class LLMUnavailable(Failure):
    """The language model failed, timed out or answered nothing usable."""

    user_text = N_("My language model is not answering right now. Please try again shortly.")


class LLMUnclear(Failure):
    """The model answered twice with nothing usable: a cut-off tool call, empty text, or leaked instructions."""

    user_text = N_("Sorry, I couldn't make sense of that request. Could you say it another way?")


class PostFailed(Failure):
    """The result was made, but Discord refused the message that carries it."""

    user_text = N_(
        "I made your picture, but I couldn't post it here. It is saved in my history: ask me to show it again."
    )


# An image service's answer, by HTTP status, as this tree (worker and OpenAI answers alike).
_BY_STATUS: dict[int, type[EgakuError]] = {
    400: WorkerRejected,
    403: WorkerRejected,
    404: WorkerRejected,
    409: JobCancelled,
    413: WorkerRejected,
    422: WorkerRejected,
    429: WorkerBusy,
    503: WorkerBusy,
}
# An error event of a stream has no status of its own: its code says which it is.
STATUS_OF_CODE = {"cancelled": 409, "timeout": 504, "out_of_memory": 503, "queue_full": 503}


def from_answer(status: int, message: str | None, *, param: str | None = None) -> EgakuError:
    """The error for a non-200 answer; `message` is the service's own error message when the body was well-formed.

    The message goes to the log and, clipped and cleaned, to the model as `detail` of a refusal;
    the user only ever sees the class's fixed text.
    """
    said = redacted(message)[:300] if message else None
    log.warning("image service answered %s: %s", status, said or "(no readable error body)")
    kind = _BY_STATUS.get(status, WorkerFailed)
    if kind is WorkerRejected:
        return WorkerRejected(f"{status}: {said or 'refused'}", detail=said, param=param)
    return kind(f"{status}: {said or ''}")


def redacted(text: str) -> str:
    """A service's message without control characters or anything that looks like a credential."""
    return _SECRETS.sub("[redacted]", _CONTROL.sub(" ", text))


def safe_detail(exc: BaseException) -> str:
    """An exception as a log line may carry it: its class, a status, an OS error's own text; never its repr or body.

    aiohttp's errors repr the request they belong to (its headers: a bearer token), and an
    API's error body can echo a key; neither ever reaches a log line or a message.
    """
    parts = [type(exc).__name__]
    if isinstance(exc, ValidationError):  # its text quotes the input: a body that may echo anything
        first = exc.errors(include_input=False, include_url=False)[0]
        return f"ValidationError: {first['type']} at {'.'.join(str(p) for p in first['loc']) or 'the top'}"
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    if isinstance(status, int):
        parts.append(str(status))
    os_error = exc if isinstance(exc, OSError) else getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        parts.append(os_error.strerror)
    return ": ".join(parts)


def new_error_id() -> str:
    """A short id that a user can quote and an operator can grep for."""
    return secrets.token_hex(4)


def user_message(exc: BaseException, error_id: str, voice: Voice = ENGLISH_VOICE) -> str:
    """The fixed, safe text for an error, in the voice's language: never the exception's own message."""
    if isinstance(exc, EgakuError) and not exc.with_error_id:
        return voice(exc.text)
    text = exc.text if isinstance(exc, EgakuError) else Text(EgakuError.user_text)
    return voice(_("{text} (error id `{error_id}`)", text=text, error_id=error_id))


def report(exc: BaseException, where: str, voice: Voice) -> str:
    """Log exc under a fresh error id and return the safe text for the user, in the voice's language."""
    error_id = new_error_id()
    if isinstance(exc, EgakuError):
        log.warning("error %s in %s: %s: %s", error_id, where, type(exc).__name__, exc)
    else:
        log.error("error %s in %s", error_id, where, exc_info=exc)
    return user_message(exc, error_id, voice)


def failure_notice(failures: list[Exception], where: str, voice: Voice) -> str | None:
    """The user text for the first failure of a turn, if any, in the voice's language."""
    return report(failures[0], where, voice) if failures else None
