"""The worker's HTTP front: routes (`server`), answers and errors (`answers`), SSE (`events`), access."""

from worker.http.access import check_exposure
from worker.http.server import WorkerServer

__all__ = ["WorkerServer", "check_exposure"]
