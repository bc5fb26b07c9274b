"""The whole record as one file (an archive), to move a database elsewhere: `roadmap export
FILE` writes one, `roadmap import FILE` loads it. (HTTP downloads for spreadsheets and notebooks
are another thing: service.downloads.)

An export is one JSON document:

    {"format": "roadmap-export", "format_version": 1, "alembic_revision": "…",
     "exported_at": "…Z", "roadmaps": [...], "programs": [...], "milestones": [...],
     "progress_reports": [...], "seed_loads": [...], "decisions": [...], "events": [...],
     "decision_attributions": [...], "audit_digest": "…"}

Each list holds a table's rows, every column under its own name, dates as "YYYY-MM-DD" and
timestamps in the chain's canonical form (see service.audit.chain). An event names its programme
by code, as its hash does, so each chain can be checked from the file alone. `audit_digest` is
the digest over the heads of the exported chains: what GET /api/v1/audit/digest answers on the
source, and on the database the file is imported into.

Left out on purpose: API keys (a secret, even hashed, stays where it was made: create new keys
on the new database), idempotency keys (stored answers to the old server's clients), webhook
subscriptions and their delivery log (their secrets derive from the old server's key and their
cursors are positions in the old feed: subscribe again on the new one), and events'
`txid`, the writing transaction on the old database; imported events all get the importing
transaction's, so the new database's feed lists them in id order and later writes after them.

Export streams the rows out a batch at a time. Import goes into an empty database only, in one
transaction, and keeps every id, so references such as a digest's last_event_id still point at
the same rows; it holds the parsed file in memory, since every chain is checked before anything
is written.
"""

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from alembic.util import CommandError
from sqlalchemy import Boolean, Column, Date, Integer, Select, String, Table, func, insert, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from service.audit.chain import chains_digest, first_broken_link
from service.audit.verify import verify_chains
from service.clock import format_timestamp, utc_now
from service.db import read_snapshot
from service.db_url import parse_database_url
from service.models import Base
from service.schema_setup import current_revision, head_revision, startup_lock, upgrade_to_head
from service.types import UTCDateTime

FORMAT = "roadmap-export"
FORMAT_VERSION = 1

# Rows fetched, and inserted, per round trip: large enough to be quick, small enough that a
# long history never sits in memory while it is written out.
_BATCH = 2000


class ArchiveError(Exception):
    """Why an export or import cannot go ahead, as one line for the person running it."""


@dataclass(frozen=True)
class _Section:
    """One table as it appears in the file."""

    name: str  # the table's name, and its list's key in the document
    record: str  # what a message calls one of its rows

    @property
    def table(self) -> Table:
        return Base.metadata.tables[self.name]

    @property
    def columns(self) -> list[Column[Any]]:
        return list(self.table.columns)

    @property
    def plural(self) -> str:
        return f"{self.record}s"

    @property
    def key(self) -> list[Column[Any]]:
        """The primary key: rows are exported in its order."""
        return list(self.table.primary_key.columns)


# In an order that satisfies the foreign keys on import.
_SECTIONS = (
    _Section("roadmaps", "roadmap"),
    _Section("programs", "programme"),
    _Section("milestones", "milestone"),
    _Section("progress_reports", "progress report"),
    _Section("seed_loads", "seed load"),
    _Section("decisions", "decision"),
)
_EVENTS = _Section("events", "event")
# Rows that refer to events, so inserted after them.
_AFTER_EVENTS = (_Section("decision_attributions", "decision attribution"),)
# An event carries its programme's code where the table has program_id (see the module text).
_EVENT_COLUMNS = [c for c in _EVENTS.columns if c.name not in ("txid", "program_id")]
_EVENT_PROGRAM = Column("program", String(), nullable=False)
_ALL_SECTIONS = (*_SECTIONS, _EVENTS, *_AFTER_EVENTS)
_BY_NAME = {section.name: section for section in _ALL_SECTIONS}


@dataclass
class TransferSummary:
    counts: dict[str, int] = field(default_factory=dict)
    digest: str = ""

    def describe(self) -> str:
        return ", ".join(f"{n} {_BY_NAME[name].plural}" for name, n in self.counts.items())


# ---- export ----------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _DocumentWriter:
    """Writes one JSON object member by member, so that a list of any length streams out."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._members = 0
        out.write("{")

    def _key(self, key: str) -> None:
        self._out.write(f"{',' if self._members else ''}\n{_dump(key)}:")
        self._members += 1

    def member(self, key: str, value: Any) -> None:
        self._key(key)
        self._out.write(_dump(value))

    async def rows(self, key: str, rows: AsyncIterator[dict[str, Any]]) -> int:
        """A list with one row per line; returns how many rows were written."""
        self._key(key)
        self._out.write("[")
        count = 0
        async for row in rows:
            self._out.write(f"{',' if count else ''}\n{_dump(row)}")
            count += 1
        self._out.write("\n]")
        return count

    def close(self) -> None:
        self._out.write("\n}\n")


async def _stream(connection: AsyncConnection, query: Select[Any]) -> AsyncIterator[dict[str, Any]]:
    result = await connection.stream(query.execution_options(yield_per=_BATCH))
    async for row in result:
        yield {key: _json_value(value) for key, value in row._mapping.items()}


async def _check_revision(connection: AsyncConnection) -> str:
    revision = await connection.run_sync(current_revision)
    expected = head_revision()
    if revision is None:
        raise ArchiveError("the database has no roadmap schema: is DATABASE_URL right?")
    if revision != expected:
        raise ArchiveError(
            f"the database is at schema revision {revision}, this roadmap at {expected}: "
            "run `roadmap migrate` first"
        )
    return revision


def check_export_source(database_url: str) -> None:
    """Refuse a SQLite file that is not there: connecting would create it, empty, as a side
    effect of a command that only reads."""
    url = parse_database_url(database_url)
    file = url.database if url.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        raise ArchiveError(f"there is no database file {file}")


async def _export_rows(
    document: _DocumentWriter, connection: AsyncConnection, section: _Section
) -> int:
    query = select(*section.columns).order_by(*section.key)
    return await document.rows(section.name, _stream(connection, query))


async def export_database(engine: AsyncEngine, out: TextIO) -> TransferSummary:
    """Write the whole database, but for keys, to `out` as one JSON document."""
    summary = TransferSummary()
    async with AsyncSession(engine) as session:
        snapshot = await read_snapshot(session)
        document = _DocumentWriter(out)
        document.member("format", FORMAT)
        document.member("format_version", FORMAT_VERSION)
        document.member("alembic_revision", await _check_revision(snapshot))
        document.member("exported_at", format_timestamp(utc_now()))
        for section in _SECTIONS:
            summary.counts[section.name] = await _export_rows(document, snapshot, section)

        events = _EVENTS.table
        programs = Base.metadata.tables["programs"]
        query = (
            select(
                events.c.id,
                programs.c.code.label("program"),
                *(column for column in _EVENT_COLUMNS if column.name != "id"),
            )
            .join(programs, programs.c.id == events.c.program_id)
            .order_by(events.c.program_id, events.c.seq)
        )
        heads: dict[str, str] = {}

        async def events_noting_heads() -> AsyncIterator[dict[str, Any]]:
            async for event in _stream(snapshot, query):
                heads[event["program"]] = event["hash"]  # in seq order: the last one is the head
                yield event

        summary.counts["events"] = await document.rows("events", events_noting_heads())
        for section in _AFTER_EVENTS:
            summary.counts[section.name] = await _export_rows(document, snapshot, section)
        # From the exported chains rather than digest_as_of: the two agree, except that on
        # PostgreSQL digest_as_of leaves out events of transactions not yet "settled" for the
        # change feed, which this file holds and the importing database will count.
        summary.digest = chains_digest(heads)
        document.member("audit_digest", summary.digest)
        document.close()
    return summary


@contextlib.contextmanager
def written_in_place(path: Path) -> Iterator[TextIO]:
    """A file beside `path` that takes its place only once complete, so that a failed export
    never leaves a truncated file behind that looks like an export."""
    # Created like any file (the umask applies), under a name no one else uses.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        handle = temporary.open("x", encoding="utf-8")
    except OSError as exc:
        raise ArchiveError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            temporary.replace(path)
        except OSError as exc:
            raise ArchiveError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ---- import ----------------------------------------------------------------------------------


@dataclass
class ExportFile:
    """A checked export: rows ready to insert, by table, in the order they can be inserted."""

    rows: dict[str, list[dict[str, Any]]]
    digest: str


def _expect(kind: type, value: Any) -> Any:
    # bool is an int to Python, but not to a database column.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(value)
    return value


def _from_json(column: Column[Any], value: Any) -> Any:
    """The column's Python value; ValueError if `value` cannot be one."""
    if value is None:
        if not column.nullable:
            raise ValueError(value)
        return None
    kind = column.type
    if isinstance(kind, UTCDateTime):
        moment = datetime.fromisoformat(_expect(str, value))
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment
    if isinstance(kind, Date):
        return date.fromisoformat(_expect(str, value))
    if isinstance(kind, Boolean):
        return _expect(bool, value)
    if isinstance(kind, Integer):
        return _expect(int, value)
    if isinstance(kind, String):
        return _expect(str, value)
    return value  # a JSON document, stored as it is


def _record(columns: Sequence[Column[Any]], raw: Any, name: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ArchiveError(f"{name}: not a JSON object")
    names = {column.name for column in columns}
    missing = [column.name for column in columns if column.name not in raw]
    unknown = sorted(raw.keys() - names)
    if missing or unknown:
        problem = f"no {missing[0]}" if missing else f"unknown field {unknown[0]!r}"
        raise ArchiveError(f"{name}: {problem}")
    record = {}
    for column in columns:
        try:
            record[column.name] = _from_json(column, raw[column.name])
        except ValueError:
            value = raw[column.name]
            raise ArchiveError(f"{name}: {column.name} {value!r} is not valid") from None
    return record


def _name_of(section: _Section, raw: Any, position: int) -> str:
    """How a message names a record: by its code or id if it has one, else by its place."""
    fields = raw if isinstance(raw, dict) else {}
    key = fields.get("code") if isinstance(fields.get("code"), str) else fields.get("id")
    where = str(key) if isinstance(key, str | int) else f"#{position} in the file"
    if section is _EVENTS and isinstance(fields.get("program"), str):
        return f"programme {fields['program']} event {where}"
    return f"{section.record} {where}"


def _section(document: dict[str, Any], section: _Section) -> list[Any]:
    rows = document.get(section.name)
    if not isinstance(rows, list):
        raise ArchiveError(f"no {section.name!r} list")
    return rows


def _check_header(document: Any) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArchiveError("not a roadmap export (written by `roadmap export`)")
    if document.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(
            f"export format version {document.get('format_version')!r} is not supported "
            f"(this roadmap reads version {FORMAT_VERSION})"
        )
    revision, expected = document.get("alembic_revision"), head_revision()
    if revision != expected:
        raise ArchiveError(
            f"exported at schema revision {revision!r}, but this roadmap is at {expected!r}: "
            "export and import with the same version of roadmap"
        )
    if not isinstance(document.get("audit_digest"), str):
        raise ArchiveError("no audit_digest")


def _chains(
    document: dict[str, Any], program_ids: dict[str, int]
) -> dict[str, list[dict[str, Any]]]:
    """Each programme's events in seq order, checked: names the first record that is wrong."""
    chains: dict[str, list[dict[str, Any]]] = {code: [] for code in program_ids}
    for position, raw in enumerate(_section(document, _EVENTS), start=1):
        name = _name_of(_EVENTS, raw, position)
        event = _record([*_EVENT_COLUMNS, _EVENT_PROGRAM], raw, name)
        if event["program"] not in chains:
            raise ArchiveError(f"{name}: no programme {event['program']!r} in the file")
        chains[event["program"]].append(event)
    for code in sorted(chains):
        chain = sorted(chains[code], key=lambda event: event["seq"])
        broken = first_broken_link(chain)
        if broken is not None:
            raise ArchiveError(f"programme {code} event {broken[0]}: {broken[1]}")
        chains[code] = chain
    return chains


def read_export(path: Path) -> ExportFile:
    """Read and check an export without touching any database: every record has its columns,
    every chain verifies, and together they give the file's audit digest."""
    try:
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ArchiveError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"{path} is not JSON: {exc}") from None
    _check_header(document)
    rows = {
        section.name: [
            _record(section.columns, raw, _name_of(section, raw, position))
            for position, raw in enumerate(_section(document, section), start=1)
        ]
        for section in (*_SECTIONS, *_AFTER_EVENTS)
    }
    program_ids = {program["code"]: program["id"] for program in rows["programs"]}
    chains = _chains(document, program_ids)
    heads = {code: chain[-1]["hash"] for code, chain in chains.items() if chain}
    # A chain cut short, or left out with its programme, still verifies link by link.
    if chains_digest(heads) != document["audit_digest"]:
        raise ArchiveError("the events do not add up to the file's audit_digest")
    rows["events"] = [
        {**{k: v for k, v in event.items() if k != "program"}, "program_id": program_ids[code]}
        for code, chain in chains.items()
        for event in chain
    ]
    return ExportFile(rows=rows, digest=document["audit_digest"])


async def _refuse_unless_empty(session: AsyncSession) -> None:
    for section in _ALL_SECTIONS:
        if await session.scalar(select(*section.key).limit(1)) is not None:
            raise ArchiveError(
                f"the database already holds {section.plural}; import only into an empty one"
            )


async def _reset_id_sequences(session: AsyncSession) -> None:
    """Rows inserted with their ids leave PostgreSQL's sequences behind: the next insert would
    take id 1. Point each sequence at its table's highest id (SQLite needs nothing of the kind:
    it takes the highest rowid plus one)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for section in (*_SECTIONS, _EVENTS):  # those keyed by a generated id
        table = section.table
        highest = func.max(table.c.id)
        await session.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, "id"),
                    func.coalesce(highest, 1),
                    highest.is_not(None),  # an empty table's next id stays 1
                )
            ).select_from(table)
        )


async def import_database(
    engine: AsyncEngine, database_url: str, export: ExportFile
) -> TransferSummary:
    """Migrate the database (without seeding) and load `export` into it, all or nothing."""
    # Under the start-up lock, so that a `serve` starting meanwhile finds the database full
    # afterwards rather than seeding it between our check and our writes.
    async with startup_lock(engine, database_url):
        try:
            async with engine.begin() as connection:
                await upgrade_to_head(connection)
        except CommandError as exc:  # e.g. a database at a revision this roadmap does not know
            raise ArchiveError(f"cannot migrate the database: {exc}") from None
        async with AsyncSession(engine) as session:
            await _refuse_unless_empty(session)
            try:
                for section in _ALL_SECTIONS:
                    rows = export.rows[section.name]
                    for start in range(0, len(rows), _BATCH):
                        await session.execute(insert(section.table), rows[start : start + _BATCH])
            except (IntegrityError, DataError) as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise ArchiveError(f"the database refused a record: {reason}") from None
            await _reset_id_sequences(session)
            # Read back what was stored: this proves the database keeps every hashed value
            # exactly, and checks what the file alone cannot (a programme's version and status
            # against its history).
            report = await verify_chains(session)
            if not report.ok:
                first = report.mismatches[0]
                where = f" event {first.event_id}" if first.event_id is not None else ""
                raise ArchiveError(f"programme {first.program}{where}: {first.reason}")
            await session.commit()
    return TransferSummary(
        counts={name: len(rows) for name, rows in export.rows.items()}, digest=export.digest
    )
