"""Shared by the world's training tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _threads_restored() -> Iterator[None]:
    """The command sets torch's thread count (as recorded); later tests get theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
