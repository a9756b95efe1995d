"""The loopback guard itself: a test that reaches beyond this machine fails."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from loopback import NonLoopbackConnection


def test_non_loopback_connect_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(NonLoopbackConnection):
        sock.connect(("10.255.255.1", 443))


def test_dns_for_public_names_is_refused() -> None:
    with pytest.raises(NonLoopbackConnection):
        socket.getaddrinfo("discord.com", 443)


async def test_http_clients_cannot_leave_the_machine() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ClientError, NonLoopbackConnection)):
            await session.get("https://discord.com/api/v10/users/@me")


# The namespace: `make test` runs pytest under tests/guard/loopback-only, so the machine's own
# address does not exist for anything a test starts (Ray's agents bound and dialled it).

REPO = Path(__file__).resolve().parent.parent
WRAPPER = REPO / "tests" / "guard" / "loopback-only"
# Dial without the in-process guard (-I skips PYTHONPATH and its sitecustomize): the kernel must refuse.
DIAL = """
import socket, sys, time
host = sys.argv[1]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
started = time.monotonic()
try:
    socket.create_connection((host, 443), timeout=5).close()
    print("connected")
except OSError as exc:
    print(f"refused {exc.errno} {time.monotonic() - started:.3f}")
"""


def test_make_test_and_ci_run_pytest_in_the_namespace() -> None:
    recipe = (REPO / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "tests/guard/loopback-only $(PY) -m pytest" in recipe
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.skipif(os.environ.get("EGAKU_NETNS") != "inside", reason="pytest was not started by `make test`")
def test_only_loopback_exists_inside_the_namespace() -> None:
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    targets = ["10.255.255.1", *filter(None, os.environ.get("EGAKU_HOST_ADDRS", "").split(","))]
    for host in targets:
        out = subprocess.run([sys.executable, "-I", "-c", DIAL, host], capture_output=True, text=True, check=True)
        verdict, errno_, seconds = out.stdout.split()
        assert verdict == "refused", host
        assert int(errno_) == errno.ENETUNREACH, host  # no route at all, not a timeout
        assert float(seconds) < 1.0, host


def _run_wrapper(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WRAPPER), sys.executable, "-I", "-c", command], env=env, capture_output=True, text=True)


NAMES = "import os, socket; print(os.environ.get('EGAKU_NETNS'), [n for _, n in socket.if_nameindex()])"


def test_the_wrapper_makes_a_loopback_only_namespace() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EGAKU_NETNS"}
    if subprocess.run(["unshare", "-n", "true"] if os.getuid() == 0 else ["unshare", "-r", "-n", "true"]).returncode:
        pytest.skip("this machine allows no network namespaces (the fallback test covers it)")
    out = _run_wrapper(env, NAMES)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "inside ['lo']"


def test_without_namespaces_the_wrapper_warns_and_runs_the_command(tmp_path: Path) -> None:
    stub = tmp_path / "unshare"
    stub.write_text("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "EGAKU_NETNS"}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    out = _run_wrapper(env, NAMES)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("fallback [")
    assert "warning: network namespaces are not available here" in out.stderr
