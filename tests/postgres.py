"""A throwaway PostgreSQL server for tests that need a real shared database (history store, Optuna storage).

The server comes from the Debian ``postgresql`` package (``pg_config --bindir``): a fresh cluster under a
temporary directory, on a free loopback port, run as the ``postgres`` user when the tests run as root (the
server refuses root), stopped and deleted after the session. Where no server binaries exist the fixture skips
with the reason, except under CI (``CI`` set), where a missing server is an error: CI must provide one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import unavailable


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    candidates: list[Path] = []
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as ``postgres`` when we are root (the server refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _unavailable(reason: str) -> None:
    unavailable("a PostgreSQL server", reason, ".ci/run installs the Debian postgresql package")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) of a fresh, empty PostgreSQL server on loopback."""
    bindir = _bindir()
    if bindir is None:
        _unavailable("initdb/pg_ctl were not found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
    assert bindir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _unavailable("running as root without runuser to start the server as the postgres user")
    root = Path(tempfile.mkdtemp(prefix="optbench-pg-"))
    root.chmod(0o777)
    data = root / "data"
    port = _free_port()
    log = root / "server.log"
    initdb = _as_server_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
    done = subprocess.run(initdb, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"initdb failed: {done.stderr.strip().splitlines()[-1:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50 -c fsync=off"
    pg_ctl = str(bindir / "pg_ctl")
    start = _as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"])
    done = subprocess.run(start, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        text = log.read_text() if log.exists() else done.stderr
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"the server did not start: {text.strip().splitlines()[-1:]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
