"""Upgrading from the previous release, for real: its own code makes and writes the database,
this release's `roadmap migrate` upgrades it. Every event stays byte for byte, every chain still
verifies, and what the bundled facts now say differently arrives as appended records."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.db import create_engine
from tests.support.builders import bearer
from tests.support.databases import (
    TEST_DATABASE_URL,
    create_database_beside,
    drop_database,
    is_postgresql,
)
from tests.support.servers import start_server

# The commit tagged v0.2.0, the release before this one.
PREVIOUS_RELEASE = "1752082"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live


def _checkout(commit: str, into: Path) -> Path:
    """The release's source tree, laid out as its installed package is (migrations inside)."""
    archive = into / "release.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", commit], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src", filter="data")
    source = into / "src"
    (source / "service" / "migrations").symlink_to(source / "migrations")
    return source


def _run(source: Path | None, database_url: str, *args: str) -> str:
    """`roadmap ARGS` of the release in `source` (None: this one), in a directory where only
    that release's `service` package is importable."""
    env = {**os.environ, "DATABASE_URL": database_url}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=source or REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _events(url: str) -> list[dict[str, Any]]:
    """Every column of every event, as the driver returns it."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT * FROM events ORDER BY id"))
        events = [dict(row) for row in rows.mappings()]
    await engine.dispose()
    return events


@pytest.fixture
async def empty_database(tmp_path: Path) -> Any:
    if not is_postgresql():
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = await create_database_beside(TEST_DATABASE_URL or "")
    yield url
    await drop_database(url)


async def test_a_database_of_the_previous_release_upgrades_losing_nothing(
    tmp_path: Path, empty_database: str
) -> None:
    old = _checkout(PREVIOUS_RELEASE, tmp_path)
    server = start_server(empty_database, tmp_path / "old.log", workers=1, cwd=old,
                          extra_env={"PYTHONPATH": str(old)})  # fmt: skip
    try:
        token = _run(old, empty_database, "keys", "create", "--name", "old", "--role", "admin")
        headers = bearer(token.strip().splitlines()[-1])
        async with httpx.AsyncClient(base_url=f"{server.base_url}/api/v1", headers=headers) as api:
            made = await api.post("/programs", json={"code": "old_release", "title": "Old release"})
            assert made.status_code == 201, made.text
            moved = await api.post(
                "/programs/old_release/transitions", json={"to_status": "coordinated"}
            )
            assert moved.status_code == 201, moved.text
            added = await api.post("/programs/old_release/milestones", json={"title": "A treaty"})
            assert added.status_code == 201, added.text
            assert "set_on" not in added.json()["milestone"]  # it is the old release
    finally:
        server.stop()
    before = await _events(empty_database)

    _run(None, empty_database, "migrate")
    _run(None, empty_database, "migrate")  # a second start finds nothing more to append
    after = await _events(empty_database)
    assert after[: len(before)] == before  # every event, every column, as it was
    appended = after[len(before) :]
    # The seeded milestones were dated the day the old release seeded them; the bundled facts
    # date each by the act that set it, which arrives as one correcting event per milestone.
    assert [event["kind"] for event in appended] == ["milestone_updated"] * 9, appended
    assert all(event["sources"] for event in appended)
    assert " 0 mismatches" in _run(None, empty_database, "verify")
    engine = create_engine(empty_database)
    async with engine.connect() as connection:
        set_on: dict[str, Any] = dict(
            (await connection.execute(text("SELECT title, set_on FROM milestones"))).all()
        )
        reports = (
            await connection.execute(
                text("SELECT programs_completed, corrects_id FROM progress_reports ORDER BY id")
            )
        ).all()
    await engine.dispose()
    # A milestone an editor added keeps the date of its own milestone_added event.
    assert str(set_on["A treaty"]) == str(before[-1]["effective_date"])
    assert {str(day) for title, day in set_on.items() if title != "A treaty"} == {
        "2021-11-04",
        "2024-12-06",
    }
    # The 28-programmes claim of 22 Jan 2024 is corrected by a new report; the old one stays.
    corrections = [r for r in reports if r[1] is not None]
    assert len(reports) == 11
    assert len(corrections) == 1
    assert corrections[0][0] is None
