"""`roadmap export` and `roadmap import`: a whole database moved, its history provably intact.

The source is always an embedded SQLite database; the target is PostgreSQL when
TEST_DATABASE_URL names one (the move the commands exist for), else a second SQLite file.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.archive import ArchiveError, check_export_source, import_database, read_export
from service.audit.verify import Digest, digest_as_of, verify_chains
from service.auth.tokens import hash_secret, parse_key
from service.clock import today_utc
from service.db import create_engine
from service.decisions.schemas import DecisionCreate, DecisionTransition
from service.decisions.service import record_decision
from service.milestones.schemas import MilestoneCreate
from service.milestones.service import add_milestone
from service.models import Base
from service.models.events import Event
from service.models.milestones import Milestone
from service.models.roadmaps import Roadmap
from service.programs.corrections import correct_status
from service.programs.schemas import CorrectionRequest, ProgramCreate, TransitionRequest
from service.programs.service import Actor, create_program, transition_program
from service.rules.workflow import Status
from service.schema_setup import prepare_database
from tests.support.cli import Cli
from tests.support.databases import (
    TEST_DATABASE_URL,
    create_database_beside,
    drop_database,
    is_postgresql,
)

pytestmark = pytest.mark.live  # the export and import run as the real CLI

# Every table an export carries; of events, all columns but txid (see service.archive).
TABLES = (
    "roadmaps", "programs", "milestones", "progress_reports", "seed_loads", "decisions", "events",
    "decision_attributions",
)  # fmt: skip
ACTOR = Actor(name="editor@example.org", on_behalf_of="Постоянный комитет")
MOVED = "moved_programme"


@dataclass(frozen=True)
class Exported:
    source_url: str
    path: Path
    token: str  # of a key made on the source, which the export must not carry

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.text)
        return document


async def _change_the_seeded_history(session: AsyncSession) -> None:
    """Beyond the seed: a new programme, a transition and a milestone, with non-ASCII text."""
    await create_program(
        session, ProgramCreate(code=MOVED, title="Moved", title_ru="Перенесённая программа"), ACTOR
    )
    moved = TransitionRequest(to_status=Status.COORDINATED, note="согласовано «да»")
    await transition_program(session, MOVED, moved, ACTOR)
    await add_milestone(
        session, MOVED, MilestoneCreate(title="First measure", due_date=date(2030, 1, 1)), ACTOR
    )
    # A decision (its event names it, under the hash) and a correction of what it did.
    act = DecisionCreate(
        code="moved-act",
        title="Одобрено",
        body="Council of Ministers",
        date=today_utc(),
        source_url="https://example.org/act",
        transitions=[DecisionTransition(program=MOVED, to_status=Status.MINISTERIALLY_APPROVED)],
    )
    await record_decision(session, act, ACTOR)
    await correct_status(session, MOVED, CorrectionRequest(event=4, reason="не то"), ACTOR)


@pytest.fixture(scope="module")
async def exported(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A SQLite database migrated, seeded and then changed, exported once by the real CLI."""
    folder = tmp_path_factory.mktemp("transfer")
    url = f"sqlite:///{folder / 'source.db'}"
    engine = create_engine(url)
    await prepare_database(engine, url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        await _change_the_seeded_history(session)
        await session.commit()
    await engine.dispose()
    env = {"DATABASE_URL": url}
    key = cli("keys", "create", "--name", "mover", "--role", "admin", env=env)
    assert key.returncode == 0, key.stderr
    path = folder / "export.json"
    result = cli("export", str(path), env=env)
    assert result.returncode == 0, result.stderr
    return Exported(url, path, token=key.stdout.split()[-1])


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, not even migrated: PostgreSQL if the suite runs there."""
    if not is_postgresql():
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    url = await create_database_beside(TEST_DATABASE_URL or "")
    yield url
    await drop_database(url)


async def contents(url: str) -> tuple[dict[str, list[dict[str, Any]]], Digest]:
    """Every row of every exported table (events without txid), and the audit digest."""
    engine = create_engine(url)
    async with AsyncSession(engine) as session:
        rows = {}
        for name in TABLES:
            table = Base.metadata.tables[name]
            columns = [column for column in table.columns if column.name != "txid"]
            query = select(*columns).order_by(*table.primary_key.columns)
            rows[name] = [dict(row._mapping) for row in await session.execute(query)]
        digest = await digest_as_of(session)
    await engine.dispose()
    return rows, digest


async def table_names(url: str) -> list[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    await engine.dispose()
    return names


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


async def test_a_sqlite_database_moves_with_its_history_and_digest(
    cli: Cli, exported: Exported, target: str
) -> None:
    result = cli("import", str(exported.path), env={"DATABASE_URL": target})
    assert result.returncode == 0, result.stderr

    source_rows, source_digest = await contents(exported.source_url)
    target_rows, target_digest = await contents(target)
    assert target_rows == source_rows
    assert [(e["kind"], e["decision"]) for e in source_rows["events"][-5:]] == [
        ("created", None),
        ("status_changed", None),
        ("milestone_added", None),
        ("status_changed", "moved-act"),
        ("corrected", None),
    ]
    assert [d["code"] for d in target_rows["decisions"]][-1] == "moved-act"
    assert len(target_rows["decision_attributions"]) > 28  # the seeded acts' events
    assert target_digest == source_digest
    assert exported.document()["audit_digest"] == source_digest.digest

    engine = create_engine(target)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        assert (await verify_chains(session)).ok
        await session.rollback()  # the end of verifying's read-only snapshot
        # The ids were kept; new rows must follow them (PostgreSQL's sequences were moved on).
        newest_event = await session.scalar(select(func.max(Event.id)))
        newest_milestone = await session.scalar(select(func.max(Milestone.id)))
        await transition_program(
            session, MOVED, TransitionRequest(to_status=Status.MINISTERIALLY_APPROVED), ACTOR
        )
        milestone, _, event = await add_milestone(
            session, MOVED, MilestoneCreate(title="Second measure"), ACTOR
        )
        await session.commit()
        assert (event.id, milestone.id) == ((newest_event or 0) + 2, (newest_milestone or 0) + 1)
        assert (await verify_chains(session)).ok
    await engine.dispose()


async def test_import_refuses_a_database_that_is_not_empty(
    cli: Cli, exported: Exported, database_url: str
) -> None:
    _, before = await contents(database_url)
    result = cli("import", str(exported.path), env={"DATABASE_URL": database_url})
    assert result.returncode != 0
    assert one_line(result.stderr) == (
        "roadmap: import refused, nothing written: "
        "the database already holds roadmaps; import only into an empty one"
    )
    assert (await contents(database_url))[1] == before


async def test_import_refuses_an_altered_event_and_writes_nothing(
    cli: Cli, exported: Exported, target: str, tmp_path: Path
) -> None:
    document = exported.document()
    event = next(e for e in document["events"] if e["program"] == "gas_market" and e["seq"] == 3)
    event["note"] = "rewritten on the way"
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document), encoding="utf-8")

    result = cli("import", str(altered), env={"DATABASE_URL": target})
    assert result.returncode != 0
    assert one_line(result.stderr) == (
        "roadmap: import refused, nothing written: "
        f"programme gas_market event {event['id']}: hash does not match the event's content"
    )
    assert await table_names(target) == []  # refused before the database was touched


async def test_what_only_the_database_can_check_is_rolled_back(
    exported: Exported, target: str, tmp_path: Path
) -> None:
    """Every chain verifies, but a programme's version disagrees with its history: that is
    found once the rows are written, and the whole import is undone."""
    document = exported.document()
    program = next(p for p in document["programs"] if p["code"] == "gas_market")
    events = program["version"]
    program["version"] += 1
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document), encoding="utf-8")

    export = read_export(altered)
    engine = create_engine(target)
    wrong = rf"^programme gas_market event \d+: version {events + 1} but {events} events$"
    with pytest.raises(ArchiveError, match=wrong):
        await import_database(engine, target, export)
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(Roadmap)) == 0
    await engine.dispose()


def test_a_history_cut_short_is_refused(exported: Exported, tmp_path: Path) -> None:
    """Without its newest event (and with its version put back) a chain still verifies link by
    link; the file's audit digest is what shows something is missing."""
    document = exported.document()
    newest = max(
        (e for e in document["events"] if e["program"] == "gas_market"), key=lambda e: e["seq"]
    )
    document["events"].remove(newest)
    program = next(p for p in document["programs"] if p["code"] == "gas_market")
    program["version"] -= 1
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ArchiveError, match="do not add up to the file's audit_digest"):
        read_export(cut)


def test_the_export_holds_no_api_key_secret(exported: Exported) -> None:
    text = exported.text
    parsed = parse_key(exported.token)
    assert parsed is not None
    assert exported.token not in text
    assert "rmk_" not in text
    assert "secret_hash" not in text
    assert hash_secret(parsed.secret) not in text
    assert "api_keys" not in text
    assert "idempotency_keys" not in text


def test_bad_files_are_one_clear_line(cli: Cli, exported: Exported, tmp_path: Path) -> None:
    env = {"DATABASE_URL": exported.source_url}
    not_json = tmp_path / "not.json"
    not_json.write_text("roadmaps: all of them", encoding="utf-8")
    untouched = tmp_path / "untouched.db"
    result = cli("import", str(not_json), env={"DATABASE_URL": f"sqlite:///{untouched}"})
    assert result.returncode != 0
    assert "is not JSON" in one_line(result.stderr)
    assert not untouched.exists()  # the file is read before the database is opened
    with pytest.raises(ArchiveError, match="there is no database file"):
        check_export_source(f"sqlite:///{untouched}")  # rather than export an empty new file

    nowhere = tmp_path / "missing" / "export.json"
    result = cli("export", str(nowhere), env=env)
    assert result.returncode != 0
    assert one_line(result.stderr) == (
        f"roadmap: export failed, no file written: cannot write {nowhere}: "
        "No such file or directory"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="something-else"), "not a roadmap export"),
        (lambda d: d.update(alembic_revision="0001"), "exported at schema revision '0001'"),
        (lambda d: d["programs"][0].pop("status"), r"^programme \S+: no status$"),
        (
            lambda d: d["milestones"][0].update(due_date="soon"),
            r"^milestone 1: due_date 'soon' is not valid$",
        ),
        (
            lambda d: d["events"][0].update(program="nowhere"),
            r"^programme nowhere event \d+: no programme 'nowhere' in the file$",
        ),
    ],
)
def test_a_malformed_export_names_what_is_wrong(
    exported: Exported, tmp_path: Path, change: Any, message: str
) -> None:
    document = exported.document()
    change(document)
    path = tmp_path / "malformed.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ArchiveError, match=message):
        read_export(path)
