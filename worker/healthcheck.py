"""`python -m worker.healthcheck [URL]`: exit 0 when the worker at URL says it is ready, else 1.

The worker image's HEALTHCHECK. Standard library only (it runs every 30 s), and one line on stderr
when unhealthy instead of a traceback in `docker inspect`.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

DEFAULT_URL = "http://127.0.0.1:7861"


def ready(url: str, timeout_s: float = 5.0) -> str | None:
    """None when GET URL/healthz says "ok"; else why not, in a few words."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout_s) as answer:
            status = json.load(answer).get("status")
    except (OSError, ValueError, AttributeError) as exc:
        return f"no health from {url}: {exc}"
    return None if status == "ok" else f"the worker at {url} is {status!r}"


def main(argv: Sequence[str] | None = None) -> int:
    """The command: 0 healthy, 1 not (and why, on stderr)."""
    args = sys.argv[1:] if argv is None else list(argv)
    problem = ready(args[0] if args else DEFAULT_URL)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
