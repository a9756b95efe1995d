"""The `egaku` command as users run it, in real subprocesses; `imagine --raw` also in process, against the fakes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from egaku.cli import _audit, _chat, _imagine
from egaku.config import Config
from tests.agent.test_agent import configured
from tests.conftest import FAKE_ENV
from tests.fakes.discord import BOT_ID, CHANNEL_ID, FakeDiscord
from tests.fakes.openai import Call, FakeOpenAI, Say
from tests.fakes.recording_worker import RecordingWorker
from tools.backends.embedded import free_port
from training.agent.lexicon import ENGLISH

ROOT = Path(__file__).parent.parent.parent


def config_text(
    tmp_path: Path, cache: Path, *, discord: FakeDiscord | None = None, llm: FakeOpenAI | None = None
) -> str:
    """The example config, with storage in tmp_path and the given fakes filled in."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace("~/.local/share/egaku", str(tmp_path / "data")).replace("~/.cache/egaku", str(cache))
    if discord is not None:
        text = text.replace("https://discord.com/api/v10", discord.api_base)
        text = text.replace("wss://gateway.discord.gg/", discord.gateway_url)
        text = text.replace("sync_commands = true", "sync_commands = false")
    if llm is not None:
        text = text.replace('provider = "embedded"', 'provider = "openai"')
        text = text.replace('# base_url = "https://api.openai.com/v1"', f'base_url = "{llm.base_url}"')
        text = text.replace('# api_key_env = "OPENAI_API_KEY"', 'api_key_env = "FAKE_OPENAI_KEY"')
    return text


async def egaku(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b"", timeout_s: float = 280
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "egaku", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=timeout_s)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_bot_without_a_token_names_the_variable(tmp_path: Path, worker_cache: Path) -> None:
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "egaku", "bot", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "set the environment variable DISCORD_TOKEN" in err.decode()
    assert "Traceback" not in err.decode()


async def test_bad_config_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "egaku.toml"
    path.write_text('[llm]\nprovider = "skynet"\n', encoding="utf-8")
    code, _, err = await egaku("chat", "--config", str(path))
    assert code == 2 and "llm.provider" in err and "Traceback" not in err


async def test_bot_answers_a_mention_with_an_image(
    tmp_path: Path, worker_cache: Path, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """`egaku bot` with an embedded worker, against a Discord-compatible server set in the config."""
    fake_openai.then(Call("generate_image", {"prompt": "a red fox in snow, watercolour", "seed": 11}), Say("Here!"))
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache, discord=fake_discord, llm=fake_openai), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "egaku", "bot", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "DISCORD_TOKEN": "fake-token", "FAKE_OPENAI_KEY": "sk-fake"},
    )  # fmt: skip
    try:
        await fake_discord.wait_ready(timeout=120)
        await fake_discord.user_message(f"<@{BOT_ID}> draw a red fox")
        post = await fake_discord.wait_for_request(
            lambda r: r.method == "POST" and r.path == f"/api/v10/channels/{CHANNEL_ID}/messages" and bool(r.files),
            timeout=200,
        )
    finally:
        proc.terminate()  # what `docker stop` does
        log, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert post.json["content"] == "Here!", log.decode()[-3000:]
    assert proc.returncode == 0 and "stopped by a signal; shut down cleanly" in log.decode()
    worker_pid = int(re.search(r"embedded worker pid (\d+)", log.decode())[1])  # type: ignore[index]
    assert not alive(worker_pid)  # the bot stopped its worker on the way out
    assert post.json["embeds"][0]["description"] == "a red fox in snow, watercolour"
    assert Image.open(io.BytesIO(post.files[0].data)).size == (64, 64)
    assert "sk-fake" not in str(post.json) and "fake-token" not in str(post.json)


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_an_embedded_worker_stops_when_its_bot_is_killed(tmp_path: Path, worker_cache: Path) -> None:
    """SIGKILL runs no cleanup: the worker notices its parent is gone and stops by itself."""
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache), encoding="utf-8")
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import os, subprocess, sys, time\n"
        f"w = subprocess.Popen([sys.executable, '-m', 'egaku', 'worker', '--config', {str(path)!r}, '--port', "
        f"'{free_port()}', '--parent-pid', str(os.getpid())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(w.pid, flush=True)\ntime.sleep(600)",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert parent.stdout is not None
    worker_pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    assert alive(worker_pid)
    parent.kill()
    await parent.wait()
    for _ in range(150):
        if not alive(worker_pid):
            break
        await asyncio.sleep(0.1)
    assert not alive(worker_pid)


@pytest.mark.timeout(900)  # pytest's own bound, above the hang guard below (the global one is 300 s)
async def test_chat_on_embedded_defaults_answers_a_request_outside_the_world_politely(
    tmp_path: Path, worker_cache: Path
) -> None:
    """The quick start's defaults (the bundled SmolLM2 with the world adapter, the `world` preset), offline, on
    CPU: a fox is not in the shape world, so the model says what the built-in model can draw, and nothing is
    drawn. (Pictures of the world through the same path: tests/egaku/test_world_quickstart.py.)"""
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache), encoding="utf-8")
    # A hang guard, not a timing: the 135M model's turn takes 10 s on an idle core, minutes on a loaded one.
    code, out, err = await egaku("chat", "--config", str(path), stdin=b"draw a red fox\n", timeout_s=840)
    assert code == 0, err[-3000:]
    said = [text for line in out.splitlines()[1:] if (text := line.strip().removeprefix("egaku>").strip())]
    assert said == [ENGLISH.outside_reply], out
    assert not (tmp_path / "data" / "images").exists() or not any((tmp_path / "data" / "images").iterdir())


async def test_chat_speaks_each_line_in_the_language_it_was_written_in(
    app_config: Config, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """egaku's own texts (here the worker-down notice) follow each line's language, as a DM's do in Discord."""
    fake_openai.then(*[Call("generate_image", {"prompt": "a fox", "reply": "Here!"}) for _ in range(3)])
    config = configured(app_config, fake_openai.base_url, "http://127.0.0.1:9")
    out = io.StringIO()
    lines = io.StringIO("狐を描いてください\n画一只狐狸\ndraw a fox\n")
    assert await _chat(config, Path("unused.toml"), FAKE_ENV, tmp_path / "out", lines, out) == 0
    # Each error id is fresh: the same eight hex digits, in each language's own frame.
    said = [re.sub("`[0-9a-f]{8}`", "`ID`", line) for line in out.getvalue().splitlines()[1:]]
    assert said == [
        "egaku> 画像サービスに接続できません。しばらくしてからもう一度お試しください。（エラーID `ID`）",
        "egaku> 现在无法连接到图像服务。请稍后再试。（错误 ID `ID`）",
        "egaku> The image service is not reachable right now. Please try again shortly. (error id `ID`)",
    ]


async def test_imagine_raw_draws_through_the_image_service_without_the_llm(
    app_config: Config, fake_openai: FakeOpenAI, recorder: RecordingWorker, tmp_path: Path
) -> None:
    config = configured(app_config, fake_openai.base_url, recorder.url)
    out = io.StringIO()
    code = await _imagine(config, Path("unused.toml"), FAKE_ENV, tmp_path / "out", "描く: a fox, ukiyo-e", True, out)
    assert code == 0
    assert fake_openai.requests == []
    (received,) = recorder.received
    assert (received.path, received.fields["prompt"]) == ("/v1/images/generations", "描く: a fox, ukiyo-e")
    lines = out.getvalue().splitlines()
    (png,) = [Path(line.strip().removeprefix("image: ")) for line in lines if line.strip().startswith("image: ")]
    assert Image.open(png).format == "PNG" and png.parent == tmp_path / "out"
    audit = io.StringIO()
    assert await _audit(config, None, audit) == 0
    (record,) = [json.loads(line) for line in audit.getvalue().splitlines()]
    assert (record["outcome"], record["user_words"], record["final_prompt"]) == ("ok", "描く: a fox, ukiyo-e",
                                                                                 "描く: a fox, ukiyo-e")  # fmt: skip
    assert record["image_ids"] and FAKE_ENV["FAKE_OPENAI_KEY"] not in audit.getvalue()


async def test_serve_refuses_an_exposed_front_without_a_token(tmp_path: Path, worker_cache: Path) -> None:
    """`egaku serve` checks the front's exposure before it starts any Ray process."""
    path = tmp_path / "egaku.toml"
    path.write_text(config_text(tmp_path, worker_cache), encoding="utf-8")
    code, _out, err = await egaku("serve", "--config", str(path), "--host", "0.0.0.0", "--replicas", "2")
    assert code == 1
    assert "refusing to bind the worker to 0.0.0.0 without a token" in err
    assert "Traceback" not in err and "Started a local Ray instance" not in err
