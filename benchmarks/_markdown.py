"""Writing a benchmark's section into docs/benchmarks.md, replacing its previous figures."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path


def device() -> str:
    """A one-line description of this machine (and its GPU, if torch sees one)."""
    cpu = platform.processor() or platform.machine()
    text = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        import torch

        if torch.cuda.is_available():
            return f"{text}, {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    except ImportError:
        pass
    return f"{text}, no GPU"


def cpu_options(parser: argparse.ArgumentParser) -> None:
    """The options of a CPU benchmark: torch threads, and the markdown file to write the figures into."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no oversubscription on a shared box)")
    parser.add_argument("--write", type=Path)


def on_threads(threads: int) -> float:
    """Run torch on `threads` threads; the load average now (a shared machine inflates every figure)."""
    import torch

    torch.set_num_threads(threads)
    return os.getloadavg()[0]


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the section between this benchmark's markers, or append it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
