"""Programmes as they stood at the end of a business date (effective dates), optionally as the
service knew them at a moment (recorded_at): the two time axes of the history.

A programme's status on day D is the `to_status` of its newest (highest seq) status event
effective on or before D. Without corrections, status events have non-decreasing effective
dates in seq order (a transition may not be dated before the current status), so the newest is
also the latest effective, found by one seek in the partial index ix_events_status_asof: the
cost grows with programmes × points, not with the length of the history.

A correction restores the status before a voided change with that status's own, earlier
effective date, so dates can step back in seq order; for a programme with a correction
(ix_events_corrections says which) the newest is found by seq instead, a short backward scan.
That is right because every voided change is followed directly by its correction, effective no
later than the change: wherever the change counts, so does the correction, which is newer and
wins — unless `known_at` is before the correction was recorded, and the answer is then what
was believed at that moment.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    ScalarSelect,
    SQLColumnExpression,
    UnaryExpression,
    case,
    exists,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import STATUS_EVENT_KINDS, EventKind
from service.models.events import Event
from service.models.programs import Program

REVERSIBLE_FIELDS = ("title", "title_ru", "sector", "lead_bodies", "summary")
BY_EFFECTIVE_DATE = (Event.effective_date.desc(), Event.seq.desc())
BY_SEQ = (Event.seq.desc(),)


def known_by(known_at: datetime | None) -> list[ColumnElement[bool]]:
    return [] if known_at is None else [Event.recorded_at <= known_at]


def _newest_status_event(
    column: SQLColumnExpression[Any],
    day: date | ColumnElement[Any],
    known_at: datetime | None,
    order: tuple[UnaryExpression[Any], ...],
    correlate: tuple[FromClause, ...],
) -> ScalarSelect[Any]:
    return (
        select(column)
        .where(
            Event.program_id == Program.id,
            Event.kind.in_(STATUS_EVENT_KINDS),
            Event.effective_date <= day,
            *known_by(known_at),
        )
        .order_by(*order)
        .limit(1)
        .correlate(*correlate)
        .scalar_subquery()
    )


def status_event_as_of(
    column: SQLColumnExpression[Any],
    day: date | ColumnElement[Any],
    known_at: datetime | None,
    *,
    correlate: tuple[FromClause, ...] = (Program.__table__,),
) -> ColumnElement[Any]:
    """Correlated: `column` of the programme's status event in force at the end of `day`. The
    caller's query has Program (and whatever `day` comes from: name it in `correlate`)."""
    corrected = (
        exists()
        .where(Event.program_id == Program.id, Event.kind == EventKind.CORRECTED)
        .correlate(*correlate)
    )
    return case(
        (corrected, _newest_status_event(column, day, known_at, BY_SEQ, correlate)),
        else_=_newest_status_event(column, day, known_at, BY_EFFECTIVE_DATE, correlate),
    )


def status_seq_as_of(
    day: date | ColumnElement[Any], known_at: datetime | None
) -> ColumnElement[int]:
    """Correlated: the seq of the programme's status event in force at the end of `day`."""
    return status_event_as_of(Event.seq, day, known_at)


async def descriptive_fields_as_of(
    session: AsyncSession, program_ids: list[int], day: date, known_at: datetime | None
) -> dict[int, dict[str, Any]]:
    """Undo the `updated` events that came after the point in time: each field takes the value
    it had before the first such change."""
    later = Event.effective_date > day
    if known_at is not None:
        later = later | (Event.recorded_at > known_at)
    rows = await session.execute(
        select(Event.program_id, Event.changes)
        .where(Event.program_id.in_(program_ids), Event.kind == EventKind.UPDATED, later)
        .order_by(Event.program_id, Event.seq)
    )
    earlier: dict[int, dict[str, Any]] = {}
    for program_id, changes in rows:
        fields = earlier.setdefault(program_id, {})
        for name, change in (changes or {}).items():
            if name in REVERSIBLE_FIELDS and name not in fields:
                fields[name] = change["from"]
    return earlier
