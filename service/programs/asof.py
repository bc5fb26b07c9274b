"""Programmes as they stood at the end of a business date (effective dates), optionally as the
service knew them at a moment (recorded_at): the two time axes of the history.

A programme's status on day D is the `to_status` of its newest (highest seq) status event
effective on or before D. "Newest", not "latest effective date": a correction restores the
status before a voided change with that earlier status's effective date, so effective dates
can step back in seq order. Every voided change is followed by its correction, which is
effective no later than the change was; so wherever the change counts, the correction counts
too and, being newer, wins — unless `known_at` is before the correction was recorded, and the
answer is then what was believed at that moment. One short backward scan of the partial index
ix_events_status_asof per programme and point in time: the cost grows with programmes × points,
not with the length of the history.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, SQLColumnExpression, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import STATUS_EVENT_KINDS, EventKind
from service.models.events import Event
from service.models.programs import Program

REVERSIBLE_FIELDS = ("title", "title_ru", "sector", "lead_bodies", "summary")


def known_by(known_at: datetime | None) -> list[ColumnElement[bool]]:
    return [] if known_at is None else [Event.recorded_at <= known_at]


def status_event_as_of(
    column: SQLColumnExpression[Any],
    day: date | ColumnElement[Any],
    known_at: datetime | None,
) -> Select[Any]:
    """`column` of the programme's status event in force at the end of `day`; the caller
    correlates it with the programmes (and the days) it is evaluated for."""
    return (
        select(column)
        .where(
            Event.program_id == Program.id,
            Event.kind.in_(STATUS_EVENT_KINDS),
            Event.effective_date <= day,
            *known_by(known_at),
        )
        .order_by(Event.seq.desc())
        .limit(1)
    )


def status_seq_as_of(
    day: date | ColumnElement[Any], known_at: datetime | None
) -> ScalarSelect[int]:
    """Correlated: the seq of the programme's status event in force at the end of `day`."""
    return status_event_as_of(Event.seq, day, known_at).correlate(Program).scalar_subquery()


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
