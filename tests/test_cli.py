"""The `roadmap` command, run as a user runs it: a real process."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from service.db import create_engine
from tests.conftest import is_postgresql


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_a_bad_database_url_is_one_clear_line() -> None:
    result = run_cli("migrate", env={"DATABASE_URL": "mysql://nobody@nowhere/x"})
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_clear_line() -> None:
    result = run_cli(
        "migrate", env={"DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:1/none"}
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot use the database" in lines[0]
    assert "secret" not in lines[0]


def test_migrate_then_seed_a_fresh_sqlite_file(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "seeded 28 programmes" in migrated.stderr
    again = run_cli("seed", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 programmes" in again.stdout


def test_seed_refuses_a_missing_file(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = run_cli("seed", "--file", str(tmp_path / "nope.json"), env=env)
    assert result.returncode != 0
    assert "no such seed file" in result.stderr


def test_production_refuses_a_placeholder_database_password() -> None:
    result = run_cli(
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
    from tests.builders import SEEDED_EVENTS
    from tests.conftest import TEST_DATABASE_URL, create_database_beside, drop_database

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
