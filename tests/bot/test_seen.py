"""A press in flight holds its key: a second press meanwhile is told so, and the key is free again after."""

from __future__ import annotations

import pytest

from bot.seen import SeenOnce


def test_a_key_is_held_while_its_press_runs_and_freed_after_it_ends_or_fails() -> None:
    seen = SeenOnce()
    with seen.held("retry:0011") as first, seen.held("retry:0011") as second, seen.held("retry:2233") as other:
        assert (first, second, other) == (True, False, True)
    with pytest.raises(RuntimeError), seen.held("retry:0011") as again:
        assert again
        raise RuntimeError("the press failed")
    with seen.held("retry:0011") as after_failure:
        assert after_failure
    assert seen.first_time("retry:0011")  # nothing holds it now


def test_only_the_newest_keys_are_remembered() -> None:
    seen = SeenOnce(size=2)
    assert [seen.first_time(k) for k in ("a", "b", "a", "c", "a")] == [True, True, False, True, True]
