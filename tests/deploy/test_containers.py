"""The two images' Dockerfiles, checked without a docker daemon: the linters, the pinned installs, and their
entrypoint, command and health check run here as the images would run them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import aiohttp
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from egaku.doctor import diagnose
from egaku.doctor.findings import Finding
from tests.deploy.dockerfiles import ROOT, Dockerfile
from tools.backends.embedded import free_port

BIN = Path(sys.executable).parent
BOT = "deploy/docker/bot.Dockerfile"
WORKER = "deploy/docker/worker.Dockerfile"
ENTRYPOINT = ROOT / "deploy/docker/entrypoint.sh"
CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_hadolint_passes() -> None:
    run = subprocess.run([BIN / "hadolint", ROOT / BOT, ROOT / WORKER], capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout) == (0, "")


def test_shellcheck_passes() -> None:
    run = subprocess.run([BIN / "shellcheck", ENTRYPOINT], capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout) == (0, "")


def test_both_run_as_a_user_with_the_entrypoint() -> None:
    for path in (BOT, WORKER):
        image = Dockerfile.read(path).final_stage()
        assert image.last("USER") == "10001"
        assert "--uid 10001" in image.last("RUN") and "chown egaku /data" in image.last("RUN")
        assert image.last("ENTRYPOINT") == '["egaku-entrypoint"]'
    assert Dockerfile.read(BOT).cmd() == ["egaku", "bot", "--config", "/etc/egaku/config.toml"]
    assert not Dockerfile.read(BOT).all("HEALTHCHECK")  # no HTTP port to ask
    assert Dockerfile.read(WORKER).final_stage().all("HEALTHCHECK")


def test_the_worker_installs_cuda_torch_first_as_the_readme_and_makefile_say() -> None:
    assert Dockerfile.read(WORKER).pip_installs() == [
        ["--no-cache-dir", "torch==2.13.0", "--index-url", CUDA_INDEX],
        ["--no-cache-dir", ".[worker]"],
    ]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^TORCH_SPEC \?= torch==2\.13\.0$", makefile, re.M)
    assert f"TORCH_INDEX=--index-url={CUDA_INDEX}" in makefile
    assert f"pip install torch==2.13.0 --index-url {CUDA_INDEX}" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "torch==2.13.0" in PYPROJECT["project"]["optional-dependencies"]["worker"]


def test_the_bot_installs_only_its_own_pinned_set() -> None:
    assert Dockerfile.read(BOT).pip_installs() == [["--no-cache-dir", "."]]
    assert all("==" in spec for spec in PYPROJECT["project"]["dependencies"])


def test_both_copy_exactly_the_packages_pyproject_installs() -> None:
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    for path in (BOT, WORKER):
        copied = [c.split()[0] for c in Dockerfile.read(path).all("COPY") if not c.startswith("--from")]
        assert copied[0:1] == ["pyproject.toml"]
        assert set(copied[1:6]) == packages


def requirement_closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements pull in (no extras), as installed here."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.requires(name) or []]
    return seen


def test_the_bot_image_is_torch_free() -> None:
    """Everything `pip install .` brings in, resolved from what is installed here: no torch, no ray."""
    closure = requirement_closure(PYPROJECT["project"]["dependencies"])
    assert {"discord-py", "langchain-openai", "aiohttp"} <= closure
    assert not closure & {"torch", "diffusers", "transformers", "accelerate", "ray"}


def run_entrypoint(secrets: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *command], capture_output=True, text=True, check=False,
        env={"PATH": os.environ["PATH"], "EGAKU_SECRETS_DIR": str(secrets), **env},
    )  # fmt: skip


def test_the_entrypoint_turns_secret_files_into_variables(tmp_path: Path) -> None:
    (tmp_path / "DISCORD_TOKEN").write_text("token-from-a-file\n")
    (tmp_path / "EGAKU_WORKER_TOKEN").write_text("from-the-file")
    (tmp_path / "not-a-name").write_text("ignored")
    (tmp_path / "9LIVES").write_text("ignored")
    names = ("DISCORD_TOKEN", "EGAKU_WORKER_TOKEN", "not-a-name", "9LIVES")
    show = f"import os; print([(k, os.environ.get(k)) for k in {names!r}])"
    run = run_entrypoint(tmp_path, {"EGAKU_WORKER_TOKEN": "set-by-compose"}, sys.executable, "-c", show)
    assert (run.returncode, run.stderr) == (0, "")
    # A variable already set wins over the file; the trailing newline of `echo > file` is dropped.
    assert run.stdout.strip() == str(
        [("DISCORD_TOKEN", "token-from-a-file"), ("EGAKU_WORKER_TOKEN", "set-by-compose"), ("not-a-name", None),
         ("9LIVES", None)]
    )  # fmt: skip
    missing = run_entrypoint(tmp_path / "none", {}, sys.executable, "-c", "print('ran')")
    assert (missing.returncode, missing.stdout) == (0, "ran\n")


async def health(command: list[str], port: int) -> int:
    """The worker image's HEALTHCHECK, run here against `port`: its exit status."""
    local = [sys.executable, *(arg.replace("127.0.0.1:7861", f"127.0.0.1:{port}") for arg in command[1:])]
    proc = await asyncio.create_subprocess_exec(*local, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait()


async def test_the_worker_image_command_and_health_check(tmp_path: Path) -> None:
    """The worker's ENTRYPOINT and CMD with the compose config (CPU, a free loopback port), then its HEALTHCHECK,
    then `egaku doctor --worker`: the token reached the worker from the secret file alone."""
    image = Dockerfile.read(WORKER)
    check = image.healthcheck_cmd()
    assert check == ["python", "-m", "worker.healthcheck", "http://127.0.0.1:7861"]
    port = free_port()
    assert await health(check, port) == 1  # nothing there yet
    config = (ROOT / "deploy/docker/config.compose.toml").read_text(encoding="utf-8")
    config = config.replace('device = "cuda"', 'device = "cpu"').replace("/data/cache", str(tmp_path / "cache"))
    config = config.replace("port = 7861", f"port = {port}")
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/EGAKU_WORKER_TOKEN").write_text("worker-token-from-a-file\n")
    command = image.cmd()
    assert command[:4] == ["egaku", "worker", "--config", "/etc/egaku/config.toml"]
    args = [*command[1:3], str(path), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "EGAKU_SECRETS_DIR": str(tmp_path / "secrets")}
    env.pop("EGAKU_WORKER_TOKEN", None)
    proc = await asyncio.create_subprocess_exec("sh", str(ENTRYPOINT), sys.executable, "-m", "egaku", *args, env=env)
    try:
        for _ in range(600):
            if await health(check, port) == 0:
                break
            assert proc.returncode is None, "the worker exited"
            await asyncio.sleep(0.2)
        assert await health(check, port) == 0
        async with aiohttp.ClientSession() as session:
            models = f"http://127.0.0.1:{port}/v1/models"
            async with session.get(models) as bare:
                assert bare.status == 401
            async with session.get(models, headers={"Authorization": "Bearer worker-token-from-a-file"}) as given:
                assert given.status == 200
        report = await diagnose(path, {}, worker_host=True)
        assert report.findings[1:3] == (
            Finding("worker", "ok", f"The worker at http://127.0.0.1:{port} is ready."),
            Finding("worker.presets", "ok", "The worker serves world (loaded)."),
        )
    finally:
        proc.terminate()
        assert await proc.wait() == 0
