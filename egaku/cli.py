"""The `egaku` command: bot, worker, serve, chat, imagine, audit and doctor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from egaku.config import Config, load_config, read_secret
from egaku.errors import ConfigError, failure_notice, report
from egaku.i18n import Catalogs, Voice
from tools.pictures import RenderedImage
from tools.stores.files import write_once
from worker.settings import WorkerSettings

log = logging.getLogger("egaku")


def save_png(png: bytes, folder: Path) -> Path:
    """Write an image under its content hash; the same image is written once."""
    return write_once(folder / f"{hashlib.sha256(png).hexdigest()[:16]}.png", png)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egaku", description="A Discord bot that draws.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("bot", "run the Discord bot"),
        ("worker", "serve the diffusion worker over HTTP"),
        ("serve", "deploy the worker on Ray Serve: one replica per GPU behind the worker's HTTP front"),
        ("chat", "talk to the agent in this terminal (no Discord needed)"),
        ("imagine", "draw one request and exit"),
        ("audit", "print the audit log, one JSON record per image job, oldest first"),
        ("doctor", "check the config, Discord, the worker, the LLM, disk and GPU; say what to fix"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--config", type=Path, default=Path("config.toml"), help="the TOML config file")
        if name in ("worker", "serve"):
            cmd.add_argument("--host", help="bind address (overrides [worker] host)")
            cmd.add_argument("--port", type=int, help="port (overrides [worker] port)")
        if name == "worker":
            cmd.add_argument("--parent-pid", type=int, help="stop when this process is gone (the embedded worker)")
            cmd.add_argument("--token-env", help="the environment variable holding the token (overrides [worker])")
        if name == "serve":
            cmd.add_argument("--replicas", type=int, help="renderer replicas, one per GPU (overrides [worker.serve])")
            cmd.add_argument("--address", help="a Ray cluster to join (default: start one on this machine)")
        if name in ("chat", "imagine"):
            cmd.add_argument("--out", type=Path, help="folder for images (default: [storage] images_dir)")
        if name == "audit":
            cmd.add_argument("--user", help="only this Discord user id's jobs")
        if name == "doctor":
            cmd.add_argument("--json", action="store_true", help="print the findings as JSON")
            cmd.add_argument("--worker", action="store_true", help="this is a GPU host running `egaku worker`")
        if name == "imagine":
            cmd.add_argument("text", help="what to draw")
            cmd.add_argument("--raw", action="store_true", help="draw the words as written, no rewrite")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    env = os.environ if environ is None else environ
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "doctor":
        # The doctor reports a broken config itself, as one of its findings.
        from egaku.doctor import run_doctor

        return run_doctor(args.config, env, sys.stdout, as_json=args.json, worker_host=args.worker)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"egaku: {exc}", file=sys.stderr)
        return 2
    if args.command == "worker":
        if args.parent_pid:
            exit_with_parent(args.parent_pid)
        return run_worker(config, args.host, args.port, env, args.token_env)
    if args.command == "serve":
        return run_serve(config, args.host, args.port, args.replicas, args.address)
    if args.command == "bot":
        token = read_secret(config.discord.token_env, env)
        if token is None:
            print(
                f"egaku: no Discord token: set the environment variable {config.discord.token_env} "
                "(or run `egaku chat` to talk to the agent without Discord)",
                file=sys.stderr,
            )
            return 2
        return run_until_stopped(_bot(config, args.config, env, token))
    if args.command == "audit":
        return asyncio.run(_audit(config, args.user, sys.stdout))
    out = args.out or config.storage.images_path
    if args.command == "chat":
        return run_until_stopped(_chat(config, args.config, env, out, sys.stdin, sys.stdout))
    return run_until_stopped(_imagine(config, args.config, env, out, args.text, args.raw, sys.stdout))


def run_until_stopped(main: Coroutine[Any, Any, int]) -> int:
    """Run a command; SIGTERM or SIGINT cancels it, so its cleanup (stopping the embedded worker) runs.

    Without this, `docker stop` or `systemctl stop` would end the bot at once and leave its
    worker subprocess holding the GPU.
    """

    async def runner() -> int:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            log.info("stopped by a signal; shut down cleanly")
            return 0

    return asyncio.run(runner())


def exit_with_parent(parent_pid: int, interval_s: float = 1.0) -> threading.Thread:
    """Stop this process (SIGTERM, so the worker drains) when the bot that started it is gone.

    A bot killed with SIGKILL runs no cleanup; this is how its embedded worker notices.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        log.warning("the bot that started this worker (pid %s) is gone; stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def run_worker(
    config: Config, host: str | None, port: int | None, environ: Mapping[str, str], token_env: str | None = None
) -> int:
    """Serve the worker until interrupted. torch is imported here, and only here."""
    from aiohttp import web

    from worker.engine import Engine
    from worker.errors import ModelUnavailable
    from worker.http import WorkerServer, check_exposure

    settings = worker_settings(config, host, port)
    if token_env:
        settings = settings.model_copy(update={"token_env": token_env})
    token = read_secret(settings.token_env, environ)
    check_exposure(settings, token)
    engine = Engine(settings)
    try:
        engine.check()
    except ModelUnavailable as exc:
        raise SystemExit(f"the worker cannot start: {exc.message}") from exc
    server = WorkerServer(engine, settings, token)
    log.info("worker listening on http://%s:%s", settings.host, settings.port)
    web.run_app(server.app(), host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


def worker_settings(config: Config, host: str | None, port: int | None) -> WorkerSettings:
    """[worker] with the command line's bind address and port."""
    return config.worker.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})


def run_serve(config: Config, host: str | None, port: int | None, replicas: int | None, address: str | None) -> int:
    """Deploy on Ray Serve, hold until SIGTERM or SIGINT, then take the app down. ray is imported here only.

    Ray's driver wants the main thread (its own signal handling lives there), so this is not asyncio.
    """
    import ray

    from worker.ray_serve import deploy, undeploy

    settings = worker_settings(config, host, port)
    serve_updates = {k: v for k, v in (("replicas", replicas), ("address", address)) if v is not None}
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=serve_updates)})
    stop = threading.Event()
    try:
        url = deploy(settings)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _sig, _frame: stop.set())
        log.info("egaku on Ray Serve: %d replica(s); point the bot's [worker] url at %s", settings.serve.replicas, url)
        stop.wait()
        log.info("stopping: taking the app down")
    finally:
        if ray.is_initialized():
            undeploy(settings)
    return 0


async def _bot(config: Config, path: Path, environ: Mapping[str, str], token: str) -> int:
    from bot.run import run_bot, upload_hosts
    from bot.services import BotServices
    from egaku.app import open_app

    async with open_app(config, path, environ) as app:
        services = BotServices(
            agent=app.agent,
            images=app.images,
            history=app.history,
            session=app.session,
            upload_hosts=upload_hosts(config.discord),
            models=tuple(config.worker.models),
            worker=app.worker,
            preferences=app.preferences,
            concepts=app.concepts,
        )
        await run_bot(services, config.discord, token)
    return 0


async def _chat(
    config: Config, path: Path, environ: Mapping[str, str], out: Path, stdin: TextIO, stdout: TextIO
) -> int:
    from agent.service import TurnRequest
    from egaku.app import open_app

    user = getpass.getuser()
    interactive = stdin.isatty()
    catalogs = Catalogs.load()
    async with open_app(config, path, environ) as app:
        print("egaku chat: type a message (Ctrl-D to quit). Images go to", out, file=stdout, flush=True)
        while True:
            if interactive:
                print("you> ", end="", file=stdout, flush=True)
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                return 0
            text = line.strip()
            if not text:
                continue
            turn = TurnRequest.of(conversation_id="terminal", user_id=user, user_name=user, text=text)
            voice = written_voice(catalogs, text)
            try:
                result = await app.agent.respond(turn)
            except Exception as exc:
                print(f"egaku> {report(exc, 'chat', voice)}", file=stdout, flush=True)
                continue
            _show(result.said(voice), result.images, failure_notice(result.failures, "chat", voice), out, stdout)


async def _imagine(
    config: Config, path: Path, environ: Mapping[str, str], out: Path, text: str, raw: bool, stdout: TextIO
) -> int:
    from agent.service import TurnRequest, TurnResult
    from egaku.app import open_app
    from tools.service.requests import Draw

    user = getpass.getuser()
    turn = TurnRequest.of(
        conversation_id=f"imagine:{os.getpid()}", user_id=user, user_name=user, text=text, must_draw=True
    )
    voice = written_voice(Catalogs.load(), text)
    async with open_app(config, path, environ) as app:
        try:
            if raw:
                result = TurnResult.direct(await app.images.draw(turn.who, Draw(text)))
            else:
                result = await app.agent.respond(turn)
        except Exception as exc:
            print(f"egaku> {report(exc, 'imagine', voice)}", file=stdout, flush=True)
            return 1
    _show(result.said(voice), result.images, failure_notice(result.failures, "imagine", voice), out, stdout)
    return 0 if result.images else 1


async def _audit(config: Config, user: str | None, stdout: TextIO) -> int:
    """Print the audit records (who, where, their words, the final prompt, the outcome), as JSON lines."""
    from tools.stores.history import History

    folder = config.storage.history_path
    if not (folder / "history.sqlite").exists():
        print(f"egaku: no history yet in {folder}", file=sys.stderr)
        return 1
    history = await History.open(folder / "history.sqlite", folder / "files")
    try:
        for record in await history.audit_log(user):
            print(json.dumps(dataclasses.asdict(record), ensure_ascii=False), file=stdout)
    finally:
        await history.close()
    return 0


def written_voice(catalogs: Catalogs, words: str) -> Voice:
    """The terminal's voice for a line: the language it is written in, as a DM's is chosen (bot.language)."""
    from bot.language import Clues, choose

    return catalogs.voice(choose(Clues(written=words), catalogs.locales))


def _show(reply: str, images: Sequence[RenderedImage], notice: str | None, out: Path, stdout: TextIO) -> None:
    if reply:
        print(f"egaku> {reply}", file=stdout)
    if notice:
        print(f"egaku> {notice}", file=stdout)
    for image in images:
        print(f"  image: {save_png(image.png, out)}", file=stdout)
        print(f"  prompt: {image.prompt}", file=stdout)
        print(f"  ({image.summary()})", file=stdout)
    stdout.flush()
