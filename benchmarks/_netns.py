"""Benchmarks that start servers run inside a loopback-only network namespace of their own.

`loopback_only()` re-runs the benchmark under `tests/guard/loopback-only` unless it is already inside
one (or the wrapper fell back). The rule that benchmarks talk only to loopback then holds by
construction, whatever a library binds: Ray's agents bind and dial the machine's own address.
Benchmarks that talk to a server the operator runs (`agent_eval --base-url`) do not call it: a
fresh namespace has a loopback of its own, where the operator's server is not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WRAPPER = Path(__file__).resolve().parent.parent / "tests" / "guard" / "loopback-only"


def loopback_only(module: str) -> None:
    """Replace this process with `python -m module ARGS` inside the wrapper, once."""
    if os.environ.get("EGAKU_NETNS"):
        return  # inside already, or the wrapper warned that it could not make one
    os.execv(str(WRAPPER), [str(WRAPPER), sys.executable, "-m", module, *sys.argv[1:]])
