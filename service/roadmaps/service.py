from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.clock import today_utc, utc_now
from service.errors import Conflict, InvalidInput, NotFound
from service.models.programs import Program
from service.models.roadmaps import ProgressReport, Roadmap
from service.programs.progress import progress_columns
from service.programs.service import PROGRESS
from service.roadmaps.schemas import (
    ProgressReportCreate,
    ProgressReportRead,
    RoadmapCreate,
    RoadmapMilestones,
    RoadmapRead,
)
from service.rules.workflow import STATES


def progress_report_read(
    report: ProgressReport, roadmap_code: str, corrected_by: int | None = None
) -> ProgressReportRead:
    return ProgressReportRead(
        id=report.id,
        roadmap=roadmap_code,
        date=report.date,
        measures_done_pct=report.measures_done_pct,
        measures_total=report.measures_total,
        programs_completed=report.programs_completed,
        statement=report.statement,
        source_url=report.source_url,
        sources=report.sources,
        recorded_by=report.recorded_by,
        created_at=report.created_at,
        corrects=report.corrects_id,
        corrected_by=corrected_by,
    )


async def _counts_by_status(
    session: AsyncSession, roadmap_ids: list[int]
) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {s.name.value: 0 for s in STATES})
    rows = await session.execute(
        select(Program.roadmap_id, Program.status, func.count())
        .where(Program.roadmap_id.in_(roadmap_ids))
        .group_by(Program.roadmap_id, Program.status)
    )
    for roadmap_id, status, count in rows:
        counts[roadmap_id][status] = count
    return counts


async def _milestones_by_roadmap(
    session: AsyncSession, roadmap_ids: list[int]
) -> dict[int, RoadmapMilestones]:
    total, done, overdue, missed, _ = progress_columns(PROGRESS, Program.status)
    rows = await session.execute(
        select(
            Program.roadmap_id,
            *(func.coalesce(func.sum(count), 0) for count in (total, done, overdue, missed)),
        )
        .join(PROGRESS, PROGRESS.c.program_id == Program.id)
        .where(Program.roadmap_id.in_(roadmap_ids))
        .group_by(Program.roadmap_id),
        {"day": today_utc()},
    )
    totals = defaultdict(lambda: RoadmapMilestones(total=0, done=0, overdue=0, missed=0))
    for roadmap_id, *counts in rows:
        totals[roadmap_id] = RoadmapMilestones(
            total=counts[0], done=counts[1], overdue=counts[2], missed=counts[3]
        )
    return totals


async def _latest_reports(
    session: AsyncSession, roadmap_ids: list[int]
) -> dict[int, ProgressReport]:
    corrected = select(ProgressReport.corrects_id).where(ProgressReport.corrects_id.is_not(None))
    reports = await session.scalars(
        select(ProgressReport)
        .where(ProgressReport.roadmap_id.in_(roadmap_ids), ProgressReport.id.not_in(corrected))
        .order_by(ProgressReport.date, ProgressReport.id)
    )
    return {report.roadmap_id: report for report in reports}  # the last one per roadmap wins


async def _reads(session: AsyncSession, roadmaps: list[Roadmap]) -> list[RoadmapRead]:
    ids = [r.id for r in roadmaps]
    counts = await _counts_by_status(session, ids)
    milestones = await _milestones_by_roadmap(session, ids)
    latest = await _latest_reports(session, ids)
    return [
        RoadmapRead(
            code=r.code,
            title=r.title,
            title_ru=r.title_ru,
            period=r.period,
            official_program_count=r.official_program_count,
            note=r.note,
            sources=r.sources,
            created_at=r.created_at,
            program_count=sum(counts[r.id].values()),
            by_status=counts[r.id],
            milestones=milestones[r.id],
            latest_progress=progress_report_read(latest[r.id], r.code) if r.id in latest else None,
        )
        for r in roadmaps
    ]


async def list_roadmaps(session: AsyncSession) -> list[RoadmapRead]:
    roadmaps = list((await session.scalars(select(Roadmap).order_by(Roadmap.id))).all())
    return await _reads(session, roadmaps)


async def find_roadmap(session: AsyncSession, code: str) -> Roadmap:
    roadmap = await session.scalar(select(Roadmap).where(Roadmap.code == code))
    if roadmap is None:
        raise NotFound(f"There is no roadmap with code {code!r}.")
    return roadmap


async def get_roadmap(session: AsyncSession, code: str) -> RoadmapRead:
    return (await _reads(session, [await find_roadmap(session, code)]))[0]


async def create_roadmap(session: AsyncSession, data: RoadmapCreate) -> RoadmapRead:
    roadmap = Roadmap(
        code=data.code,
        title=data.title,
        title_ru=data.title_ru,
        period=data.period,
        note=data.note,
        sources=[],
        created_at=utc_now(),
    )
    session.add(roadmap)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A roadmap with code {data.code!r} already exists.") from None
    return (await _reads(session, [roadmap]))[0]


async def list_progress(session: AsyncSession, code: str) -> list[ProgressReportRead]:
    roadmap = await find_roadmap(session, code)
    reports = (
        await session.scalars(
            select(ProgressReport)
            .where(ProgressReport.roadmap_id == roadmap.id)
            .order_by(ProgressReport.date, ProgressReport.id)
        )
    ).all()
    corrected_by = {r.corrects_id: r.id for r in reports if r.corrects_id is not None}
    return [progress_report_read(r, code, corrected_by.get(r.id)) for r in reports]


async def _check_correctable(session: AsyncSession, roadmap: Roadmap, report_id: int) -> None:
    """A correction names a report of the same roadmap that no other report corrects yet."""
    report = await session.scalar(
        select(ProgressReport).where(
            ProgressReport.id == report_id, ProgressReport.roadmap_id == roadmap.id
        )
    )
    if report is None:
        raise InvalidInput(f"Roadmap {roadmap.code!r} has no progress report {report_id}.")
    later = await session.scalar(
        select(ProgressReport.id).where(ProgressReport.corrects_id == report_id)
    )
    if later is not None:
        raise Conflict(
            f"Progress report {report_id} is already corrected by report {later}: "
            "correct that one instead."
        )


async def add_progress(
    session: AsyncSession,
    code: str,
    data: ProgressReportCreate,
    *,
    recorded_by: str,
    sources: list[str] | None = None,
) -> ProgressReportRead:
    roadmap = await find_roadmap(session, code)
    if data.date > today_utc():
        raise InvalidInput(f"date {data.date} is in the future.")
    if data.corrects is not None:
        await _check_correctable(session, roadmap, data.corrects)
    report = ProgressReport(
        roadmap_id=roadmap.id,
        date=data.date,
        measures_done_pct=data.measures_done_pct,
        measures_total=data.measures_total,
        programs_completed=data.programs_completed,
        statement=data.statement,
        source_url=data.source_url,
        sources=sources if sources is not None else ([data.source_url] if data.source_url else []),
        recorded_by=recorded_by,
        created_at=utc_now(),
        corrects_id=data.corrects,
    )
    session.add(report)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent correction of the same report won
        raise Conflict(f"Progress report {data.corrects} has just been corrected.") from None
    return progress_report_read(report, code)
