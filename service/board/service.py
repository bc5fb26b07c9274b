"""What the board's pages show, gathered through the same reads as the API, so the board can
never say something the API does not."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.schemas import EventRead
from service.audit.service import event_read, program_history
from service.milestones.schemas import MilestoneRead
from service.milestones.service import list_milestones
from service.models.decisions import Decision
from service.models.events import Event
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.programs.schemas import ProgramRead
from service.programs.service import PointInTime, get_program, list_programs, program_read
from service.rules.workflow import Status
from service.stats.intervals import Interval, interval_ends
from service.stats.service import MAX_POINTS, timeline, zero_counts

# More than the board will ever hold (28 programmes per roadmap), few enough to bound a page.
MAX_PROGRAMMES = 10_000
MAX_HISTORY = 10_000
CHART_YEARS = 20  # of quarters, at most: the chart stays legible and cheap


@dataclass(frozen=True)
class Filters:
    roadmap: str | None = None
    status: Status | None = None
    sector: str | None = None
    as_of: date | None = None


@dataclass(frozen=True)
class Titled:
    """Something shown by its title in the page's language: a roadmap, a decision."""

    code: str
    title: str
    title_ru: str | None


@dataclass(frozen=True)
class Board:
    programmes: list[ProgramRead]
    counts: dict[str, int]
    roadmaps: list[Titled]
    sectors: list[str]
    chart_points: list[tuple[date, dict[str, int]]]


@dataclass(frozen=True)
class ProgramPage:
    programme: ProgramRead
    history: list[EventRead]
    milestones: list[MilestoneRead]
    decisions: dict[str, Titled]


async def board(session: AsyncSession, filters: Filters, today: date) -> Board:
    point = PointInTime(filters.as_of) if filters.as_of is not None else None
    rows = await list_programs(
        session,
        after_id=0,
        limit=MAX_PROGRAMMES,
        status=filters.status,
        sector=filters.sector,
        roadmap=filters.roadmap,
        point=point,
    )
    programmes = [program_read(row) for row in rows]
    counts = zero_counts()
    for programme in programmes:
        counts[programme.status.value] += 1
    roadmaps = [
        Titled(*row)
        for row in await session.execute(
            select(Roadmap.code, Roadmap.title, Roadmap.title_ru).order_by(Roadmap.code)
        )
    ]
    sectors = list(
        await session.scalars(
            select(Program.sector)
            .where(Program.sector.is_not(None))
            .distinct()
            .order_by(Program.sector)
        )
    )
    return Board(
        programmes=programmes,
        counts=counts,
        roadmaps=roadmaps,
        sectors=[sector for sector in sectors if sector is not None],
        # Never past today: a date in the future would only repeat today's counts.
        chart_points=await _chart_points(
            session, filters.roadmap, min(filters.as_of or today, today)
        ),
    )


async def _chart_points(
    session: AsyncSession, roadmap: str | None, end: date
) -> list[tuple[date, dict[str, int]]]:
    """Programmes per status at the end of each quarter, from the quarter of the earliest
    status date of the roadmap's programmes to `end` (the status filters do not apply: the
    timeline counts whole roadmaps)."""
    first = select(func.min(Event.effective_date)).join(Program, Program.id == Event.program_id)
    if roadmap is not None:
        first = first.join(Roadmap, Roadmap.id == Program.roadmap_id).where(Roadmap.code == roadmap)
    start = await session.scalar(first)
    if start is None or start > end:
        return []
    start = max(start, date(end.year - CHART_YEARS, 1, 1))
    points = interval_ends(start, end, Interval.QUARTER, at_most=MAX_POINTS)[:MAX_POINTS]
    counts = await timeline(session, points, roadmap=roadmap, known_at=None)
    return [(day, counts[day]) for day in points]


async def program_page(session: AsyncSession, code: str) -> ProgramPage:
    row = await get_program(session, code)
    history = [
        event_read(*event)
        for event in await program_history(
            session, program_id=row.program.id, after_seq=0, limit=MAX_HISTORY
        )
    ]
    codes = {event.decision for event in history if event.decision is not None}
    decisions = {
        code: Titled(code, title, title_ru)
        for code, title, title_ru in (
            await session.execute(
                select(Decision.code, Decision.title, Decision.title_ru).where(
                    Decision.code.in_(codes)
                )
            )
            if codes
            else []
        )
    }
    return ProgramPage(
        programme=program_read(row),
        history=history,
        milestones=await list_milestones(session, code),
        decisions=decisions,
    )


def statuses_shown(counts: dict[str, int]) -> Sequence[Status]:
    """The statuses that have programmes, in the workflow's order."""
    return [status for status in Status if counts.get(status.value)]
