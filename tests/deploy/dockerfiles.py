"""Reading a Dockerfile's instructions (continuation lines joined) for the container tests."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword and the rest of the line."""

    keyword: str
    args: str


@dataclass(frozen=True)
class Dockerfile:
    """The instructions of one Dockerfile, in order."""

    instructions: tuple[Instruction, ...]

    @classmethod
    def read(cls, path: str) -> Dockerfile:
        """Parse ROOT/path: comments dropped, backslash continuations joined."""
        joined: list[str] = []
        pending = ""
        for raw in (ROOT / path).read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            joined.append(pending + line)
            pending = ""
        return cls(tuple(Instruction(*[*line.split(None, 1), ""][:2]) for line in joined))

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction with this keyword."""
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        """The arguments of the last instruction with this keyword."""
        return self.all(keyword)[-1]

    def final_stage(self) -> Dockerfile:
        """The instructions from the last FROM on: what the image is."""
        start = max(n for n, i in enumerate(self.instructions) if i.keyword == "FROM")
        return Dockerfile(self.instructions[start:])

    def cmd(self) -> list[str]:
        """CMD in exec form."""
        return list(json.loads(self.last("CMD")))

    def healthcheck_cmd(self) -> list[str]:
        """The HEALTHCHECK's command, in exec form."""
        args = self.last("HEALTHCHECK")
        return list(json.loads(args[args.index("CMD") + 3 :]))

    def pip_installs(self) -> list[list[str]]:
        """The arguments of each `pip install` in the RUN instructions, as the shell splits them."""
        found = []
        for run in self.all("RUN"):
            for command in run.split("&&"):
                words = shlex.split(command)
                if len(words) > 2 and words[0].endswith("pip") and words[1] == "install":
                    found.append(words[2:])
        return found
