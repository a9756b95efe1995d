"""egaku's error hierarchy, and the one place that turns errors into user messages.

    EgakuError
    ├── ConfigError          the config file is wrong (names the key)
    ├── InvalidImageRequest  tool arguments broke a bound (the model is told and may retry)
    │   └── TooManyCandidates  best_of above this bot's cap, or below 1
    ├── WorkerRejected       the worker refused the request (4xx)
    ├── WorkerBusy           the worker or its GPU is saturated (503, out of memory)
    ├── WorkerUnavailable    the worker cannot be reached or is starting
    ├── WorkerFailed         the worker failed (5xx)
    │   └── WorkerLost       the connection broke mid-job (reset, cut stream, malformed events)
    ├── JobCancelled         the user cancelled the job
    ├── LLMUnavailable       the language model failed, timed out, or sent a body that is not an answer
    ├── LLMUnclear           the model's answer was unusable twice (cut-off tool call, empty, leaked instructions)
    ├── EmptyMessage         nothing to answer: only whitespace or zero-width characters
    ├── MessageTooLong       the user's message is over the input cap
    └── PostFailed           the result was made but Discord would not take the message

Users only ever see the fixed texts below plus a short error id; the details
(and any traceback) stay in the log under that id.
"""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger(__name__)


class EgakuError(Exception):
    """Base class of every error egaku expects."""

    user_text = "Something went wrong on my side."
    # Whether the user's message carries an error id (pointless for "busy" or "cancelled").
    with_error_id = True


class ConfigError(EgakuError):
    """The configuration is invalid; the message names the key."""

    user_text = "The bot is misconfigured."


class InvalidImageRequest(EgakuError):
    """An image request broke a bound (size, steps, seed...)."""

    user_text = "That image request is outside what I can draw."


class TooManyCandidates(InvalidImageRequest):
    """best_of asked for more candidates than this bot renders (or fewer than one)."""

    with_error_id = False

    def __init__(self, asked: int, cap: int) -> None:
        super().__init__(f"best_of {asked} is outside 1..{cap}")
        self.user_text = f"I can pick the best of 1 to {cap} pictures here; you asked for {asked}."


class WorkerRejected(EgakuError):
    """The worker refused the request as invalid."""

    user_text = "The image service refused that request."


class WorkerBusy(EgakuError):
    """The worker is saturated or ran out of GPU memory."""

    user_text = "The image service is busy right now. Please try again in a minute, or ask for a smaller size."


class WorkerUnavailable(EgakuError):
    """The worker cannot be reached."""

    user_text = "The image service is not reachable right now. Please try again shortly."


class WorkerFailed(EgakuError):
    """The worker failed while rendering."""

    user_text = "The image service failed on that picture."


class WorkerLost(WorkerFailed):
    """The connection to the worker broke while it worked: reset, cut mid-stream, or unreadable events."""

    user_text = "The image service stopped while drawing your picture. Please try again."


class JobCancelled(EgakuError):
    """The user cancelled the job."""

    user_text = "Cancelled."
    with_error_id = False


class LLMUnavailable(EgakuError):
    """The language model failed, timed out or answered nothing usable."""

    user_text = "My language model is not answering right now. Please try again shortly."


class LLMUnclear(EgakuError):
    """The model answered twice with nothing usable: a cut-off tool call, empty text, or leaked instructions."""

    user_text = "Sorry, I couldn't make sense of that request. Could you say it another way?"


class EmptyMessage(EgakuError):
    """The message has no words once whitespace and zero-width characters are gone."""

    user_text = "Hi! Tell me what to draw, for example: `@egaku draw a squirrel king on a throne`."
    with_error_id = False


class MessageTooLong(EgakuError):
    """The user's message is longer than the bot reads."""

    with_error_id = False

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"message of {length} characters, over the cap of {limit}")
        self.user_text = f"That message is too long for me ({length} characters). Please keep it under {limit}."


class PostFailed(EgakuError):
    """The result was made, but Discord refused the message that carries it."""

    user_text = "I made your picture, but I couldn't post it here. It is saved in my history: ask me to show it again."


def new_error_id() -> str:
    """A short id that a user can quote and an operator can grep for."""
    return secrets.token_hex(4)


def user_message(exc: BaseException, error_id: str) -> str:
    """The fixed, safe text for an error: never the exception's own message."""
    if isinstance(exc, EgakuError) and not exc.with_error_id:
        return exc.user_text
    text = exc.user_text if isinstance(exc, EgakuError) else EgakuError.user_text
    return f"{text} (error id `{error_id}`)"


def report(exc: BaseException, where: str) -> str:
    """Log exc under a fresh error id and return the safe text for the user."""
    error_id = new_error_id()
    if isinstance(exc, EgakuError):
        log.warning("error %s in %s: %s: %s", error_id, where, type(exc).__name__, exc)
    else:
        log.error("error %s in %s", error_id, where, exc_info=exc)
    return user_message(exc, error_id)


def failure_notice(failures: list[Exception], where: str) -> str | None:
    """The user text for the first failure of a turn, if any."""
    return report(failures[0], where) if failures else None
