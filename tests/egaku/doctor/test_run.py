"""`egaku doctor` as operators run it: every check in order, the exit code, --json, --worker, no secret printed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from egaku.doctor import Probes, diagnose
from egaku.doctor.findings import Finding
from egaku.doctor.host import GIB
from tests.egaku.doctor.conftest import TOKEN, config_file
from tests.egaku.test_cli import egaku
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai import Call, Fail, FakeOpenAI, Say
from worker.measures import GpuDevice

LLM_KEY = "sk-planted-llm-key-0123456789"
WORKER_TOKEN = "planted-worker-token-abcdef"
ENV = {"DISCORD_TOKEN": TOKEN, "LLM_KEY": LLM_KEY, "EGAKU_WORKER_TOKEN": WORKER_TOKEN}
ROOMY = Probes(free=lambda _path: 50 * GIB)


async def test_all_clear(synced: FakeDiscord, fake_openai: FakeOpenAI, worker_url: str, tmp_path: Path) -> None:
    fake_openai.then(Say("OK"), Call("generate_image", {"prompt": "a red fox sitting in the snow"}))
    path = config_file(tmp_path, discord=synced, llm_url=fake_openai.base_url, worker_url=worker_url)
    report = await diagnose(path, ENV, probes=ROOMY)
    assert [(f.check, f.status) for f in report.findings] == [
        ("config", "ok"),
        ("discord.token", "ok"),
        ("discord.intents", "ok"),
        ("discord.servers", "ok"),
        ("discord.permissions.1000", "ok"),
        ("discord.commands", "ok"),
        ("worker", "ok"),
        ("worker.presets", "ok"),
        ("worker.token", "ok"),
        ("llm.answer", "ok"),
        ("llm.tools", "ok"),
        ("disk", "ok"),
    ]
    assert report.findings[0] == Finding("config", "ok", f"{path} is valid.")
    assert report.findings[-1] == Finding("disk", "ok", f"50.0 GiB free for the history at {tmp_path}/data/history.")
    assert report.exit_code == 0


async def test_a_broken_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "egaku.toml"
    path.write_text('[llm]\nprovider = "skynet"\n', encoding="utf-8")
    code, out, err = await egaku("doctor", "--config", str(path))
    assert (code, err) == (1, "")
    assert out == (
        f"egaku doctor: {path}\n\n"
        f"FAIL  config  {path}: llm.provider: Input should be 'embedded', 'openai' or 'ollama'\n"
        "              fix: Correct that key: config.example.toml documents every key.\n\n"
        "1 problem.\n"
    )


async def test_planted_secrets_never_print(
    fake_discord: FakeDiscord, fake_openai: FakeOpenAI, worker_url: str, tmp_path: Path
) -> None:
    """A server that echoes the key it was sent, debug logging on: the secrets still never reach the output."""
    fake_openai.then(Fail(500, f"upstream rejected Authorization: Bearer {LLM_KEY}"))
    path = config_file(
        tmp_path, discord=fake_discord, llm_url=fake_openai.base_url, worker_url=worker_url,
        worker_token_env="EGAKU_WORKER_TOKEN",
    )  # fmt: skip
    code, out, err = await egaku("-v", "doctor", "--config", str(path), "--json", env=ENV)
    for secret in (TOKEN, LLM_KEY, WORKER_TOKEN):
        assert secret not in out and secret not in err
    body = json.loads(out)
    assert (code, body["ok"]) == (1, False)
    by_check = {f["check"]: f for f in body["findings"]}
    assert by_check["llm.answer"]["message"] == (
        f"The endpoint at {fake_openai.base_url} answered 500: upstream rejected Authorization: Bearer ***."
    )
    assert by_check["worker.token"]["message"] == "The worker accepts the token in EGAKU_WORKER_TOKEN."
    assert by_check["discord.token"]["status"] == "ok"
    # The fake saw the real values: they were sent, just never shown.
    assert any(r.path == "/api/v10/users/@me" for r in fake_discord.requests)


async def test_a_worker_host(fresh_worker: str, tmp_path: Path) -> None:
    """--worker on a GPU host: the worker on this host's [worker] port, and the GPU; no Discord, no LLM."""
    port = fresh_worker.rsplit(":", 1)[1]
    path = tmp_path / "worker.toml"
    path.write_text(
        f'[worker]\nport = {port}\ndefault_model = "tiny"\n'
        "[worker.models.tiny]\nsource = 'tiny'\nwidth = 64\nheight = 64\ngpu_memory_gb = 4\n"
        "[worker.models.tiny-alt]\nsource = 'tiny'\nwidth = 64\nheight = 64\ngpu_memory_gb = 40\n",
        encoding="utf-8",
    )
    gpu = Probes(gpus=lambda: [GpuDevice("NVIDIA L4", int(22.5 * GIB))])
    report = await diagnose(path, {}, worker_host=True, probes=gpu)
    assert report.findings[1:] == (
        Finding("worker", "ok", f"The worker at http://127.0.0.1:{port} is ready."),
        Finding("worker.presets", "ok", "The worker serves tiny (loaded), tiny-alt."),
        Finding("gpu.tiny", "ok", "Preset tiny fits: it needs about 4 GiB; GPU 0 (NVIDIA L4) has 22.5 GiB."),
        Finding(
            "gpu.tiny-alt",
            "fail",
            "Preset tiny-alt needs about 40 GiB of GPU memory; GPU 0 (NVIDIA L4) has 22.5 GiB.",
            "Choose a preset that fits (README: Choosing a model), or a GPU with more memory.",
        ),
    )
    assert report.exit_code == 1


NO_TORCH = """
import importlib.abc, sys
HEAVY = {"torch", "diffusers", "transformers", "ray"}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError(f"the doctor imported {name}")
sys.meta_path.insert(0, Refuse())
from egaku.cli import main
code = main(sys.argv[1:])
print("heavy:", sorted(m for m in sys.modules if m.split(".")[0] in HEAVY))
sys.exit(code)
"""


async def test_the_doctor_of_a_bot_host_never_imports_torch(
    synced: FakeDiscord, fake_openai: FakeOpenAI, worker_url: str, tmp_path: Path
) -> None:
    """With a remote worker and an HTTP LLM, as in the torch-free bot image."""
    fake_openai.then(Say("OK"), Call("generate_image", {"prompt": "a red fox sitting in the snow"}))
    path = config_file(tmp_path, discord=synced, llm_url=fake_openai.base_url, worker_url=worker_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", NO_TORCH, "doctor", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **ENV},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert (proc.returncode, err.decode()) == (0, ""), out.decode()
    assert out.decode().endswith("Everything checked is in order.\nheavy: []\n")
