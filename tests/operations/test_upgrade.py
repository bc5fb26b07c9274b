"""Upgrading from an earlier release, for real: its own code makes and writes the database, this
release's `roadmap migrate` upgrades it and this release's server serves it. Every event stays
byte for byte, every chain still verifies, and what this release knows that the old one did not
(facts it dates differently, the decisions behind seeded changes) arrives as appended records."""

import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
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

REPO = Path(__file__).resolve().parents[2]
API = "/api/v1"


@dataclass(frozen=True)
class Release:
    name: str
    # A clean clone has the commit, if not the tag.
    commit: str
    # The kinds of the events `migrate` appends to a database the release seeded.
    appended: tuple[str, ...]
    # Progress reports it seeded wrongly, each corrected by an appended report.
    corrected_reports: int
    # The columns its events gain.
    gained: frozenset[str] = frozenset({"decision"})
    # A route it did not have yet, to tell that the old release is what runs.
    lacks: str = "/decisions"


RELEASES = [
    # Its seeded milestones were dated the day it seeded them; the bundled facts date each by
    # the act that set it, which arrives as one correcting event per milestone.
    # And it seeded the 28-programmes claim of 22 Jan 2024 as completions.
    Release("v0.2.0", "1752082", ("milestone_updated",) * 9, corrected_reports=1),
    # Decisions arrive as attributions, not as events.
    Release("v0.3.0", "8ce86b1", (), corrected_reports=0),
    # The release before this one: webhooks are new tables, and the record is as it was.
    Release("v0.4.0", "0694acf", (), corrected_reports=0, gained=frozenset(), lacks="/webhooks"),
]
BUNDLED_REPORTS = 10  # the progress reports of service/seed/data
SEEDED_DECISIONS = [
    "presidents-2021-09-09",
    "council-of-ministers-2021-09-10",
    "ssc-decree-6-2021",
    "ssc-2024-01-29",
]

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


async def _query(url: str, sql: str) -> list[dict[str, Any]]:
    """The rows of `sql`, every column as the driver returns it."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        rows = [dict(row) for row in (await connection.execute(text(sql))).mappings()]
    await engine.dispose()
    return rows


async def _events(url: str) -> list[dict[str, Any]]:
    return await _query(url, "SELECT * FROM events ORDER BY id")


@pytest.fixture
async def empty_database(tmp_path: Path) -> AsyncIterator[str]:
    if not is_postgresql():
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = await create_database_beside(TEST_DATABASE_URL or "")
    yield url
    await drop_database(url)


async def _made_and_written_by(release: Release, url: str, tmp_path: Path) -> dict[str, str]:
    """The release's server makes and seeds the database, then an editor changes it through
    the release's API. Returns the headers of the release's admin key."""
    old = _checkout(release.commit, tmp_path)
    server = start_server(url, tmp_path / "old.log", workers=1, cwd=old,
                          extra_env={"PYTHONPATH": str(old)})  # fmt: skip
    try:
        token = _run(old, url, "keys", "create", "--name", "old", "--role", "admin")
        headers = bearer(token.strip().splitlines()[-1])
        async with httpx.AsyncClient(base_url=f"{server.base_url}/api/v1", headers=headers) as api:
            assert (await api.get(release.lacks)).status_code == 404  # it is the old release
            made = await api.post("/programs", json={"code": "old_release", "title": "Old release"})
            assert made.status_code == 201, made.text
            for status in ("coordinated", "ministerially_approved", "draft", "coordinated"):
                moved = await api.post(
                    "/programs/old_release/transitions", json={"to_status": status}
                )
                assert moved.status_code == 201, moved.text
            added = await api.post("/programs/old_release/milestones", json={"title": "A treaty"})
            assert added.status_code == 201, added.text
    finally:
        server.stop()
    return headers


def _old_columns(events: list[dict[str, Any]], columns: dict[str, Any]) -> list[dict[str, Any]]:
    return [{column: event[column] for column in columns} for event in events]


async def _decisions(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The decisions as served, each with the steps it made (all but when it was recorded)."""
    served = []
    for decision in (await api.get(f"{API}/decisions")).json()["items"]:
        recorded = (await api.get(f"{API}/decisions/{decision['code']}")).json()
        served.append(
            {key: value for key, value in decision.items() if key != "recorded_at"}
            | {
                "steps": [
                    (e["program"], e["seq"], e["to_status"], e["effective_date"])
                    for e in recorded["events"]
                ]
            }
        )
    return served


async def _assert_served_as_it_was_written(
    api: httpx.AsyncClient, before: list[dict[str, Any]]
) -> None:
    """The old events as this release serves them: hashes as the old release wrote them, the
    seeded steps attributed to their decisions, gas_market's of 4 Nov 2021 to Decree No. 6."""
    old_hash = {event["id"]: event["hash"] for event in before}
    for code in SEEDED_DECISIONS:
        for event in (await api.get(f"{API}/decisions/{code}")).json()["events"]:
            assert event["decision_attributed"], event
            assert event["hash"] == old_hash[event["id"]], event
    gas = (await api.get(f"{API}/programs/gas_market/history", params={"limit": 500})).json()
    on_decree = [
        event
        for event in gas["items"]
        if event["effective_date"] == "2021-11-04" and event["kind"] == "status_changed"
    ]
    assert [e["to_status"] for e in on_decree] == ["supreme_council_approved", "in_implementation"]
    assert {e["decision"] for e in on_decree} == {"ssc-decree-6-2021"}
    for event in gas["items"]:
        if event["id"] in old_hash:  # not a correction the upgrade appended
            assert event["hash"] == old_hash[event["id"]], event
    written = (await api.get(f"{API}/programs/old_release/history")).json()["items"]
    assert [e["hash"] for e in written] == [old_hash[e["id"]] for e in written]
    assert all(e["decision"] is None for e in written)
    assert (await api.get(f"{API}/audit/verify")).json()["ok"]


async def _assert_milestones_and_reports_as_bundled(
    url: str, release: Release, before: list[dict[str, Any]]
) -> None:
    set_on: dict[str, Any] = {
        row["title"]: row["set_on"]
        for row in await _query(url, "SELECT title, set_on FROM milestones")
    }
    reports = await _query(
        url, "SELECT programs_completed, corrects_id FROM progress_reports ORDER BY id"
    )
    # A milestone an editor added keeps the date of its own milestone_added event.
    assert str(set_on["A treaty"]) == str(before[-1]["effective_date"])
    assert {str(day) for title, day in set_on.items() if title != "A treaty"} == {
        "2021-11-04",
        "2024-12-06",
    }
    # A report seeded wrongly is corrected by a new report; the old one stays.
    corrections = [r for r in reports if r["corrects_id"] is not None]
    assert len(reports) == BUNDLED_REPORTS + release.corrected_reports
    assert len(corrections) == release.corrected_reports
    assert all(r["programs_completed"] is None for r in corrections)


@pytest.mark.parametrize("release", RELEASES, ids=[release.name for release in RELEASES])
async def test_a_database_of_an_earlier_release_upgrades_losing_nothing(
    release: Release, tmp_path: Path, empty_database: str, client: httpx.AsyncClient
) -> None:
    """`client` serves a database this release seeded, to compare with."""
    headers = await _made_and_written_by(release, empty_database, tmp_path)
    before = await _events(empty_database)

    _run(None, empty_database, "migrate")
    _run(None, empty_database, "migrate")  # a second start finds nothing more to append
    after = await _events(empty_database)
    # Every event, every column it had, as it was; the column it gains is empty for each.
    assert _old_columns(after[: len(before)], before[0]) == before
    assert set(after[0]) - set(before[0]) == release.gained
    assert all(event["decision"] is None for event in after)
    appended = after[len(before) :]
    assert tuple(event["kind"] for event in appended) == release.appended, appended
    assert all(event["sources"] for event in appended)
    assert " 0 mismatches" in _run(None, empty_database, "verify")

    attributions = "SELECT * FROM decision_attributions ORDER BY event_id"
    attributed = await _query(empty_database, attributions)
    assert {row["event_id"] for row in attributed} <= {event["id"] for event in before}
    server = start_server(empty_database, tmp_path / "new.log", workers=1)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as api:
            # The seeded decisions, as a database this release seeded has them.
            decisions = await _decisions(api)
            assert [d["code"] for d in decisions] == SEEDED_DECISIONS
            assert decisions == await _decisions(client)
            await _assert_served_as_it_was_written(api, before)
    finally:
        assert server.stop() == 0
    # Starting the server appended nothing more either.
    assert await _events(empty_database) == after
    assert await _query(empty_database, attributions) == attributed

    await _assert_milestones_and_reports_as_bundled(empty_database, release, before)
