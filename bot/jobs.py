"""The image jobs in flight in this bot, by id: whose each one is, and where (for cancels)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """Whose job it is, and where."""

    user_id: int
    channel_id: int


class JobRegistry:
    """The jobs in flight, by id, so that cancels can find them and check who may cancel."""

    def __init__(self) -> None:
        self._jobs: dict[str, Owner] = {}

    def add(self, job_id: str, owner: Owner) -> None:
        """A job started."""
        self._jobs[job_id] = owner

    def remove(self, job_id: str) -> None:
        """A job ended."""
        self._jobs.pop(job_id, None)

    def owner(self, job_id: str) -> Owner | None:
        """Who started a job still in flight."""
        return self._jobs.get(job_id)

    def of(self, user_id: int, channel_id: int) -> list[str]:
        """A user's jobs in flight in one channel."""
        return [j for j, o in self._jobs.items() if o == Owner(user_id, channel_id)]
