"""Counts for dashboards, computed in the database (see programs.asof for the method)."""

from collections import Counter
from datetime import date, datetime

from sqlalchemy import Date, func, literal, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from service.filters import require_known
from service.models.events import Event
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.programs.asof import status_event_as_of
from service.programs.service import PointInTime, list_programs
from service.rules.workflow import STATES

MAX_POINTS = 3700  # ten years of days
POINTS_PER_QUERY = 400


def zero_counts() -> dict[str, int]:
    return {state.name.value: 0 for state in STATES}


async def summary(
    session: AsyncSession, point: PointInTime, roadmap: str | None
) -> tuple[int, dict[str, int], dict[str, int]]:
    rows = await list_programs(session, after_id=0, limit=1_000_000, roadmap=roadmap, point=point)
    by_status = zero_counts()
    by_sector: Counter[str] = Counter()
    for row in rows:
        assert row.status_then is not None
        by_status[row.status_then[0]] += 1
        by_sector[row.fields_then.get("sector", row.program.sector) or "unknown"] += 1
    return len(rows), by_status, dict(sorted(by_sector.items()))


async def timeline(
    session: AsyncSession,
    points: list[date],
    *,
    roadmap: str | None,
    known_at: datetime | None,
) -> dict[date, dict[str, int]]:
    """Programmes per status at each point: one statement, one index seek per programme and
    point (programs.asof), whatever the length of the history."""
    if roadmap is not None:
        await require_known(session, roadmap=roadmap)
    counts = {point: zero_counts() for point in points}
    # SQLite allows at most 500 terms in a compound SELECT: ask in batches.
    for start in range(0, len(points), POINTS_PER_QUERY):
        batch = points[start : start + POINTS_PER_QUERY]
        await _count_at(session, batch, counts, roadmap=roadmap, known_at=known_at)
    return counts


async def _count_at(
    session: AsyncSession,
    points: list[date],
    counts: dict[date, dict[str, int]],
    *,
    roadmap: str | None,
    known_at: datetime | None,
) -> None:
    days = union_all(*(select(literal(point, Date).label("day")) for point in points)).subquery(
        "days"
    )
    status_then = status_event_as_of(
        Event.to_status, days.c.day, known_at, correlate=(Program.__table__, days)
    )
    per_programme = (
        select(days.c.day.label("day"), status_then.label("status"))
        .select_from(days)
        .join(Program, true())
        .join(Roadmap, Roadmap.id == Program.roadmap_id)
    )
    if roadmap is not None:
        per_programme = per_programme.where(Roadmap.code == roadmap)
    inner = per_programme.subquery("then")
    rows = await session.execute(
        select(inner.c.day, inner.c.status, func.count())
        .where(inner.c.status.is_not(None))
        .group_by(inner.c.day, inner.c.status)
    )
    for day_text, status, count in rows:
        counts[date.fromisoformat(str(day_text)[:10])][status] = count
