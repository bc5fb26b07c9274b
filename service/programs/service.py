"""Use cases for programmes. Functions here never commit: the route commits once, then answers."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    String,
    Subquery,
    and_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from service.audit.kinds import EventKind
from service.audit.service import EventSink, append_event
from service.caching import Validation
from service.clock import today_utc, utc_now
from service.conditions import etag_for_version, if_match_passes
from service.db import fetch_first
from service.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TransitionNotAllowed,
)
from service.filters import require_known
from service.models.events import Event
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.programs.asof import descriptive_fields_as_of, status_seq_as_of
from service.programs.progress import progress_by_program, progress_columns
from service.programs.schemas import (
    DESCRIPTIVE_FIELDS,
    ProgramCreate,
    ProgramRead,
    ProgramUpdate,
    ProgressRead,
    TransitionRequest,
)
from service.rules.citations import citations_of
from service.rules.milestones import CLOSED_STATUSES
from service.rules.workflow import INITIAL_STATUS, Refused, Status, label_of, refusal_of


@dataclass(frozen=True)
class Actor:
    """Who makes a change (`name`) and, if they say so, for whom (`on_behalf_of`)."""

    name: str
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class Progress:
    """What a programme's milestones add up to (see rules.milestones for the states)."""

    total: int = 0
    done: int = 0
    overdue: int = 0
    missed: int = 0
    next_due_date: date | None = None


@dataclass
class ProgramRow:
    program: Program
    roadmap_code: str
    progress: Progress = field(default_factory=Progress)
    # For an as-of view: the status then, and descriptive fields that have changed since.
    status_then: tuple[str, date] | None = None
    fields_then: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PointInTime:
    """The end of business day `as_of`, as recorded by `known_at` (None: as recorded now)."""

    as_of: date
    known_at: datetime | None = None


@dataclass
class LockedProgram(ProgramRow):
    head_hash: str | None = None


# The statements below are built once, with these parameters: a statement object reused
# across requests keeps its memoised cache key, so SQLAlchemy neither rebuilds nor recompiles
# it. Pass {"day": today_utc()} (or the as-of date) and "code" when executing them.
CODE = bindparam("code", type_=String())
# Seeds the hash of a programme code into its advisory-lock key, apart from other uses of
# hashtextextended.
WRITE_LOCK_SEED = 0x524D


def progress_of(
    total: int | None, done: int | None, overdue: int | None, missed: int | None, next_due: Any
) -> Progress:
    return Progress(total or 0, done or 0, overdue or 0, missed or 0, next_due)


def program_read(row: ProgramRow) -> ProgramRead:
    program, roadmap_code, progress = row.program, row.roadmap_code, row.progress
    status, status_date = row.status_then or (program.status, program.status_effective_date)

    def then(name: str) -> Any:
        return row.fields_then.get(name, getattr(program, name))

    return ProgramRead(
        code=program.code,
        number=program.number,
        title=then("title"),
        title_ru=then("title_ru"),
        title_official=program.title_official,
        sector=then("sector"),
        lead_bodies=then("lead_bodies"),
        summary=then("summary"),
        sources=program.sources,
        roadmap=roadmap_code,
        status=Status(status),
        status_label=label_of(status),
        status_effective_date=status_date,
        version=program.version,
        created_at=program.created_at,
        updated_at=program.updated_at,
        progress=ProgressRead(
            milestones_total=progress.total,
            milestones_done=progress.done,
            milestones_overdue=progress.overdue,
            milestones_missed=progress.missed,
            next_due_date=progress.next_due_date,
        ),
    )


# The event that gave a programme its status at a point in time (one alias, so that the join
# and a status filter refer to the same thing).
STATUS_THEN = aliased(Event, name="status_then")


def _select_programs(progress: Subquery, status: SQLColumnExpression[Any]) -> Select[Any]:
    """Programmes with their roadmap and progress, for a programme status given by `status`
    (now, or then: see _programs_then)."""
    return (
        select(Program, Roadmap.code, *progress_columns(progress, status))
        .join(Roadmap, Roadmap.id == Program.roadmap_id)
        .outerjoin(progress, progress.c.program_id == Program.id)
    )


PROGRESS = progress_by_program()
PROGRAMS = _select_programs(PROGRESS, Program.status)
PROGRAM_BY_CODE = _select_programs(progress_by_program(code=CODE), Program.status).where(
    Program.code == CODE
)
# A programme's write lock: a transaction-level advisory lock on its code (a 64-bit hash; two
# codes that collide merely queue behind each other). It reads nothing: see lock_program.
LOCK_PROGRAM = select(func.pg_advisory_xact_lock(func.hashtextextended(CODE, WRITE_LOCK_SEED)))
# The programme with the hash of its newest event, read once the lock is held.
PROGRAM_WITH_HEAD_BY_CODE = PROGRAM_BY_CODE.add_columns(Event.hash).outerjoin(
    Event, (Event.program_id == Program.id) & (Event.seq == Program.version)
)


def _programs_then(point: PointInTime, *, code: ColumnElement[str] | None = None) -> Select[Any]:
    """Programmes as they stood at `point`: status, and progress counted then (milestones set
    by then, done by then, overdue or missed by the status then). Programmes that did not
    exist yet drop out."""
    progress = progress_by_program(code=code, known_at=point.known_at)
    joined = _select_programs(progress, STATUS_THEN.to_status).join(
        STATUS_THEN,
        and_(
            STATUS_THEN.program_id == Program.id,
            STATUS_THEN.seq == status_seq_as_of(point.as_of, point.known_at),
        ),
    )
    return joined.add_columns(STATUS_THEN.to_status, STATUS_THEN.effective_date)


async def _rows(
    session: AsyncSession, query: Select[Any], params: dict[str, Any], point: PointInTime | None
) -> list[ProgramRow]:
    """Run a programmes query (with the status-then join when `point` is given)."""
    rows = [
        ProgramRow(
            row[0],
            row[1],
            progress_of(*row[2:7]),
            status_then=(row[7], row[8]) if point is not None else None,
        )
        for row in await session.execute(query, params)
    ]
    if point is not None and rows:
        earlier = await descriptive_fields_as_of(
            session, [r.program.id for r in rows], point.as_of, point.known_at
        )
        for row in rows:
            row.fields_then = earlier.get(row.program.id, {})
    return rows


async def get_program(
    session: AsyncSession, code: str, point: PointInTime | None = None, *, today: date | None = None
) -> ProgramRow:
    if point is None:
        query, day = PROGRAM_BY_CODE, today or today_utc()
    else:
        query, day = _programs_then(point, code=CODE).where(Program.code == CODE), point.as_of
    rows = await _rows(session, query, {"code": code, "day": day}, point)
    if not rows:
        if point is not None:
            known = f" as recorded by {point.known_at.isoformat()}" if point.known_at else ""
            raise NotFound(
                f"Programme {code!r} has no status on {point.as_of}{known}, or does not exist."
            )
        raise NotFound(f"There is no programme with code {code!r}.")
    return rows[0]


VERSION_BY_CODE = select(Program.version).where(Program.code == bindparam("code"))


def version_validation(code: str) -> Validation:
    """What validates an answer about one programme: its version."""
    return Validation(VERSION_BY_CODE, {"code": code})


async def current_version(engine: AsyncEngine, validation: Validation) -> int | None:
    """The programme's version as committed now (`validation` is version_validation's), by one
    indexed lookup outside a transaction."""
    row = await fetch_first(engine, validation.statement, validation.params)
    return None if row is None else int(row[0])


async def list_programs(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    status: Status | None = None,
    sector: str | None = None,
    roadmap: str | None = None,
    q: str | None = None,
    overdue: bool | None = None,
    point: PointInTime | None = None,
) -> list[ProgramRow]:
    base = PROGRAMS if point is None else _programs_then(point)
    query = base.where(Program.id > after_id).order_by(Program.id).limit(limit)
    if status is not None:
        current = STATUS_THEN.to_status if point is not None else Program.status
        query = query.where(current == status.value)
    if sector is not None:
        query = query.where(Program.sector == sector)
    if roadmap is not None:
        query = query.where(Roadmap.code == roadmap)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            Program.title.ilike(pattern, escape="\\") | Program.title_ru.ilike(pattern, escape="\\")
        )
    if overdue is not None:
        has_overdue = func.coalesce(query.selected_columns.overdue, 0) > 0
        query = query.where(has_overdue if overdue else ~has_overdue)
    day = today_utc() if point is None else point.as_of
    rows = await _rows(session, query, {"day": day}, point)
    if not rows:
        await require_known(session, roadmap=roadmap)
    return rows


async def lock_program(
    session: AsyncSession, code: str, *, if_match: str | None = None
) -> LockedProgram:
    """Take the programme's write lock for the rest of the transaction, and read it.

    PostgreSQL: a transaction-level advisory lock on the programme's code, so concurrent
    writers to one programme queue there, as the first statement of the write's transaction.
    Only then is the programme read, with the hash of its newest event, by a second statement.
    Both halves matter:

    - The read's snapshot is taken after the lock was granted (READ COMMITTED), so it sees
      everything the previous holder committed. Reading in the locking statement itself, as
      SELECT … FOR UPDATE with joins once did, is not safe: a writer that waited gets the
      locked row re-read but the rows joined to it from its old snapshot, where the newest
      event does not exist yet, and chained events to the genesis hash.
    - An advisory lock assigns no transaction id, so the writer's id is assigned after the
      lock is granted (at its first write), hence after its predecessor's. The change feed
      orders by transaction id (service.audit.feed), so a programme's events reach it in seq
      order. A row lock (FOR UPDATE) may assign the id while still waiting, and did.

    tests/robustness/test_contention.py guards both.

    SQLite has no row locks and a deferred transaction that reads first cannot safely write
    later, so there a no-op UPDATE takes the database's write lock before anything is read.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Program).where(Program.code == code).values(version=Program.version)
        )
    else:
        await session.execute(LOCK_PROGRAM, {"code": code})
    params = {"code": code, "day": today_utc()}
    row = (await session.execute(PROGRAM_WITH_HEAD_BY_CODE, params)).first()
    if row is None:
        raise NotFound(f"There is no programme with code {code!r}.")
    locked = LockedProgram(row[0], row[1], progress_of(*row[2:7]), head_hash=row[7])
    check_if_match(locked.program, if_match)
    return locked


def check_if_match(program: Program, if_match: str | None) -> None:
    """A change's precondition, checked under the write lock, so no other change can slip in
    between the check and the write."""
    current_etag = etag_for_version(program.version)
    if if_match is not None and not if_match_passes(if_match, current_etag):
        raise PreconditionFailed(
            f"The programme has changed: its ETag is now {current_etag}, not {if_match}.",
            headers={"ETag": current_etag},
        )


async def create_program(
    session: AsyncSession,
    data: ProgramCreate,
    actor: Actor,
    *,
    created_on: date | None = None,
    sources: list[str] | None = None,
    program_sources: list[str] | None = None,
) -> tuple[ProgramRow, Event]:
    """Create a programme in its initial status, with its `created` event: the API's and the
    seed's one way. `created_on` backdates the creation (default today); `sources` are the
    event's citations and `program_sources` the programme's own (both default to source_url)."""
    roadmap_id = await session.scalar(select(Roadmap.id).where(Roadmap.code == data.roadmap))
    if roadmap_id is None:
        raise InvalidInput(f"There is no roadmap with code {data.roadmap!r}.")
    now = utc_now()
    created_on = created_on or now.date()
    fields = data.model_dump(exclude={"note", "source_url", "actor", "roadmap"})
    cited = [data.source_url] if data.source_url else []
    program = Program(
        **fields,
        roadmap_id=roadmap_id,
        sources=cited if program_sources is None else program_sources,
        status=INITIAL_STATUS.value,
        status_effective_date=created_on,
        version=0,
        created_at=now,
        updated_at=now,
    )
    session.add(program)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A programme with code {data.code!r} already exists.") from None
    event = append_event(
        session,
        program=program,
        prev_hash=None,
        kind=EventKind.CREATED,
        to_status=INITIAL_STATUS.value,
        effective_date=created_on,
        recorded_at=now,
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        note=data.note,
        source_url=data.source_url,
        sources=sources,
        changes={"fields": {k: v for k, v in fields.items() if v is not None}},
    )
    await session.flush()
    return ProgramRow(program, data.roadmap), event


async def update_program(
    session: AsyncSession,
    code: str,
    data: ProgramUpdate,
    actor: Actor,
    *,
    if_match: str | None = None,
) -> tuple[ProgramRow, Event | None]:
    """Apply the descriptive fields that really change; no change writes no event."""
    locked = await lock_program(session, code, if_match=if_match)
    program = locked.program
    requested = data.model_dump(include=set(DESCRIPTIVE_FIELDS), exclude_unset=True)
    if requested.get("title", "") is None:
        raise InvalidInput("A programme's title cannot be removed.")
    changes: dict[str, Any] = {}
    for name, new_value in requested.items():
        old_value = getattr(program, name)
        if old_value != new_value:
            changes[name] = {"from": old_value, "to": new_value}
            setattr(program, name, new_value)
    if not changes:
        return locked, None
    event = append_event(
        session,
        program=program,
        prev_hash=locked.head_hash,
        kind=EventKind.UPDATED,
        effective_date=today_utc(),
        recorded_at=utc_now(),
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        note=data.note,
        source_url=data.source_url,
        changes=changes,
    )
    await session.flush()
    return locked, event


def check_transition(program: Program, target: Status, effective_date: date, today: date) -> None:
    """The workflow's rules for one status change; raises the problem that breaks them: a step
    the workflow does not have (409) before a date it cannot take (422)."""
    refusal = refusal_of(program.status, program.status_effective_date, target, effective_date)
    if refusal is not None and refusal.refused is Refused.STEP:
        raise TransitionNotAllowed(
            refusal.reason,
            current_status=program.status,
            allowed_targets=[status.value for status in refusal.allowed_targets],
        )
    if effective_date > today:
        raise InvalidInput(f"effective_date {effective_date} is in the future (today is {today}).")
    if refusal is not None:
        raise InvalidInput(refusal.reason)


def cited(
    source_url: str | None, sources: list[str] | None, *, required: bool
) -> tuple[str | None, list[str]]:
    """The change's citations (rules.citations); `required` (ROADMAP_REQUIRE_SOURCES) refuses
    a change that cites nothing."""
    source_url, citations = citations_of(source_url, sources)
    if required and not citations:
        raise InvalidInput(
            "Cite a source: give source_url (or sources, a list of citations). This server "
            "requires one for every status change, decision and correction "
            "(ROADMAP_REQUIRE_SOURCES)."
        )
    return source_url, citations


def record_status_change(
    session: EventSink,
    locked: LockedProgram,
    to_status: Status,
    effective_date: date,
    actor: Actor,
    *,
    kind: EventKind = EventKind.STATUS_CHANGED,
    note: str | None = None,
    source_url: str | None = None,
    sources: list[str] | None = None,
    changes: dict[str, Any] | None = None,
    decision: str | None = None,
    recorded_at: datetime | None = None,
) -> Event:
    """Set the locked programme's status and append the event that records it: the one way a
    status changes. It checks nothing: its callers have (check_transition for a transition or a
    decision's steps; corrections.correct_status, whose step the workflow does not list).
    Several calls may follow one lock, each chained to the event before it; the changes of one
    act share one `recorded_at`, so no `known_at` sees half of it."""
    program = locked.program
    from_status = program.status
    program.status = to_status.value
    program.status_effective_date = effective_date
    event = append_event(
        session,
        program=program,
        prev_hash=locked.head_hash,
        kind=kind,
        from_status=from_status,
        to_status=to_status.value,
        effective_date=effective_date,
        recorded_at=recorded_at or utc_now(),
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        note=note,
        source_url=source_url,
        sources=sources,
        changes=changes,
        decision=decision,
    )
    locked.head_hash = event.hash
    return event


async def transition_program(
    session: AsyncSession,
    code: str,
    request: TransitionRequest,
    actor: Actor,
    *,
    sources: list[str] | None = None,
    today: date | None = None,
    if_match: str | None = None,
    require_source: bool = False,
) -> tuple[ProgramRow, Event]:
    """Change the status and append its event, under the programme's write lock. `sources`
    (the seed's) stand for the request's own. On PostgreSQL the API's common transition takes
    the lean path (programs.lean_transitions), which makes the same change by the same rules."""
    locked = await lock_program(session, code, if_match=if_match)  # a 404 or 412 comes first
    status_before = locked.program.status
    event = apply_transition(
        session,
        locked,
        request,
        actor,
        sources=sources,
        today=today or today_utc(),
        require_source=require_source,
    )
    await session.flush()
    return await as_changed(session, locked, status_before, today=today), event


def apply_transition(
    session: EventSink,
    locked: LockedProgram,
    request: TransitionRequest,
    actor: Actor,
    *,
    today: date,
    sources: list[str] | None = None,
    require_source: bool = False,
) -> Event:
    """A transition's rules and its event, on a programme locked and read (its If-Match
    checked): what every way of making a transition shares."""
    source_url, citations = cited(
        request.source_url, sources or request.sources, required=require_source
    )
    effective_date = request.effective_date or today
    check_transition(locked.program, request.to_status, effective_date, today)
    return record_status_change(
        session,
        locked,
        request.to_status,
        effective_date,
        actor,
        note=request.note,
        source_url=source_url,
        sources=citations,
    )


def opened_or_closed(status_before: str, status_after: str) -> bool:
    """Whether a status change opened or closed the programme, so that its milestone figures,
    read under the old status, must be read again (a closed programme's unfinished milestones
    are missed, an open one's overdue)."""
    return (status_before in CLOSED_STATUSES) != (status_after in CLOSED_STATUSES)


async def as_changed(
    session: AsyncSession, locked: LockedProgram, status_before: str, *, today: date | None = None
) -> ProgramRow:
    """The programme after a status change, for the answer: as locked, or read again when the
    change opened or closed it (opened_or_closed)."""
    if not opened_or_closed(status_before, locked.program.status):
        return locked
    return await get_program(session, locked.program.code, today=today)
