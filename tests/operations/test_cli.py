"""The `roadmap` command, run as a user runs it: a real process."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from service.db import create_engine
from tests.support.builders import SEEDED_EVENTS
from tests.support.cli import Cli
from tests.support.databases import (
    TEST_DATABASE_URL,
    create_database_beside,
    drop_database,
    is_postgresql,
)
from tests.support.servers import LiveServer, free_port

pytestmark = pytest.mark.live  # every test here starts the command, or a server, as a process


def test_a_bad_database_url_is_one_clear_line(cli: Cli) -> None:
    result = cli("migrate", env={"DATABASE_URL": "mysql://nobody@nowhere/x"})
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_clear_line(cli: Cli) -> None:
    result = cli("migrate", env={"DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:1/none"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot use the database" in lines[0]
    assert "secret" not in lines[0]


def test_migrate_then_seed_a_fresh_sqlite_file(cli: Cli, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    migrated = cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "seeded 28 programmes" in migrated.stderr
    again = cli("seed", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 programmes" in again.stdout


def test_seed_refuses_a_missing_file(cli: Cli, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = cli("seed", "--file", str(tmp_path / "nope.json"), env=env)
    assert result.returncode != 0
    assert "no such seed file" in result.stderr


def test_production_refuses_a_placeholder_database_password(cli: Cli) -> None:
    result = cli(
        "migrate",
        env={
            "ROADMAP_ENV": "production",
            "DATABASE_URL": "postgresql://roadmap:changeme@127.0.0.1:1/roadmap",
        },
    )
    assert result.returncode != 0
    assert "placeholder password" in result.stderr
    assert "changeme" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_replicas_starting_together_migrate_and_seed_once(tmp_path: Path) -> None:
    """Two processes start at once against one fresh database: one migrates and seeds, the
    other waits on the start-up lock and finds nothing left to do."""
    if TEST_DATABASE_URL and is_postgresql():
        url = await create_database_beside(TEST_DATABASE_URL)
    else:
        url = f"sqlite:///{tmp_path / 'replicas.db'}"
    try:
        env = {**os.environ, "DATABASE_URL": url}
        command = ["-c", "from service.cli import main; main()", "migrate"]
        starts = [
            await asyncio.create_subprocess_exec(
                sys.executable, *command, env=env, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(3)
        ]
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in starts)), 120)
        results = [
            (p.returncode, err.decode()) for p, (_, err) in zip(starts, outputs, strict=True)
        ]
        assert [code for code, _ in results] == [0, 0, 0], results
        assert sum("seeded 28 programmes" in err for _, err in results) == 1
        engine = create_engine(url)
        async with engine.connect() as connection:
            programs = (await connection.execute(text("SELECT count(*) FROM programs"))).scalar()
            events = (await connection.execute(text("SELECT count(*) FROM events"))).scalar()
        await engine.dispose()
        assert (programs, events) == (28, SEEDED_EVENTS)
    finally:
        await drop_database(url)


def run_serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`roadmap serve` that is expected to give up by itself. Were it to start serving (or hang)
    instead, its process group is killed after a while and the test fails."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that workers, if any started, are killed with it
    )
    try:
        # A few seconds of it are Python importing the service.
        stdout, stderr = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"`serve {' '.join(args)}` was still running after 20 s")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_busy_port_ends_at_once_in_one_line(tmp_path: Path, workers: str) -> None:
    database = tmp_path / "untouched.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve(
            "--port", str(port), "--workers", workers, env={"DATABASE_URL": f"sqlite:///{database}"}
        )
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"roadmap: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert not database.exists()  # refused before migrating anything


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--port", "0"], {}, "--port 0"),
        (["--port", "99999"], {}, "--port 99999"),
        (["--workers", "0"], {}, "--workers 0"),
        ([], {"PORT": "99999"}, "PORT"),
    ],
)
def test_serve_refuses_a_port_or_worker_count_out_of_range(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    database = tmp_path / "untouched.db"
    result = run_serve(*args, env={"DATABASE_URL": f"sqlite:///{database}", **env})
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"roadmap: {named} ")
    assert not database.exists()


def test_serve_without_migrating_starts_despite_an_unreachable_database_but_warns(
    tmp_path: Path,
) -> None:
    """An orchestrator may start the service before its database: it should serve, and
    /readyz tells when the database is there. The operator is told at start, in one line."""
    port = free_port()
    errors = tmp_path / "stderr.txt"
    with (tmp_path / "server.log").open("wb") as log, errors.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--no-migrate", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:1/none"},
            stdout=log,
            stderr=stderr,
            start_new_session=True,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", tmp_path / "server.log")
    try:
        healthz: httpx.Response | None = None
        deadline = time.monotonic() + 60
        while healthz is None and time.monotonic() < deadline and process.poll() is None:
            try:
                healthz = httpx.get(f"{server.base_url}/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.2)
        assert process.poll() is None, errors.read_text()
        assert healthz is not None, "no answer within 60 s"
        assert healthz.status_code == 200
        assert httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 503
    finally:
        assert server.stop() == 0
    lines = errors.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("roadmap: WARNING: cannot reach the database at postgresql://")
    assert "secret" not in lines[0]
