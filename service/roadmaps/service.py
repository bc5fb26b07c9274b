from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFound
from service.programs.models import Program
from service.roadmaps.models import Roadmap
from service.roadmaps.schemas import RoadmapRead
from service.workflow import STATES


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


def _roadmap_read(roadmap: Roadmap, by_status: dict[str, int]) -> RoadmapRead:
    return RoadmapRead(
        code=roadmap.code,
        title=roadmap.title,
        title_ru=roadmap.title_ru,
        period=roadmap.period,
        official_program_count=roadmap.official_program_count,
        note=roadmap.note,
        sources=roadmap.sources,
        created_at=roadmap.created_at,
        program_count=sum(by_status.values()),
        by_status=by_status,
    )


async def list_roadmaps(session: AsyncSession) -> list[RoadmapRead]:
    roadmaps = list((await session.scalars(select(Roadmap).order_by(Roadmap.id))).all())
    counts = await _counts_by_status(session, [r.id for r in roadmaps])
    return [_roadmap_read(r, counts[r.id]) for r in roadmaps]


async def get_roadmap(session: AsyncSession, code: str) -> RoadmapRead:
    roadmap = await session.scalar(select(Roadmap).where(Roadmap.code == code))
    if roadmap is None:
        raise NotFound(f"There is no roadmap with code {code!r}.")
    counts = await _counts_by_status(session, [roadmap.id])
    return _roadmap_read(roadmap, counts[roadmap.id])
