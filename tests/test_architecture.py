"""The claims of docs/architecture.md that code can check: where heavy libraries are imported, one backend
protocol, one contract between the agent and its tools, and reasons on long modules."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "diffusers", "transformers"}
SOURCE = ("egaku", "bot", "agent", "tools", "worker", "training")


def modules() -> list[Path]:
    return [p for root in SOURCE for p in (REPO / root).rglob("*.py")]


def imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level package, imported at module level) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    # Imports under `if TYPE_CHECKING:` or try blocks at module level still count as module level.
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try):
            top |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], id(node) in top))
    return found


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_torch_diffusers_and_transformers_stay_in_the_worker_and_training() -> None:
    at_top = sorted({relative(p) for p in modules() for name, top in imports(p) if name in HEAVY and top})
    assert at_top and all(name.startswith(("worker/", "training/")) for name in at_top), at_top
    lazily = sorted(
        {relative(p) for p in modules() for name, top in imports(p) if name in HEAVY and not top}
        - {relative(p) for p in modules() if relative(p).startswith(("worker/", "training/"))}
    )
    assert lazily == ["agent/smol.py"]


def test_ray_is_imported_by_the_scale_out_modules_only() -> None:
    users = sorted({relative(p) for p in modules() for name, _ in imports(p) if name == "ray"})
    assert users == ["egaku/cli.py", "worker/ray_serve.py"]


def test_one_backend_protocol() -> None:
    protocols = []
    for path in (REPO / "tools").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Protocol" for b in node.bases):
                methods = {n.name for n in node.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)}
                if {"generate", "edit"} <= methods:
                    protocols.append(f"{relative(path)}:{node.name}")
    assert protocols == ["tools/backends/base.py:ImageBackend"]


def test_the_agent_names_no_tool_and_copies_no_argument() -> None:
    """The verbs, names and arguments of tool calls come from the tools' own schemas (tools/image_tools.py)."""
    for name in ("decision.py", "llm.py", "middleware.py", "graph.py", "service.py"):
        text = (REPO / "agent" / name).read_text(encoding="utf-8")
        assert '"generate_image"' not in text and '"edit_image"' not in text, name
        assert '"regenerate"' not in text and '"instruct"' not in text, name


def test_a_long_module_says_why_at_its_top() -> None:
    for path in modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert "on purpose" in docstring, relative(path)
