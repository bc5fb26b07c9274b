from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from service.caching import ComputedView
from service.errors import InvalidInput, problem_responses
from service.programs.router import AsOfQuery, KnownAtQuery, known_at_utc, point_in_time
from service.programs.service import today_utc
from service.schemas import Text
from service.stats import service
from service.stats.intervals import Interval, interval_ends
from service.stats.schemas import SummaryRead, TimelinePoint, TimelineRead

router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(422))

RoadmapFilter = Annotated[Text | None, Query(max_length=64)]


@router.get("/summary", response_model=SummaryRead)
async def summary(
    view: ComputedView,
    as_of: AsOfQuery = None,
    known_at: KnownAtQuery = None,
    roadmap: RoadmapFilter = None,
) -> Response:
    """Programmes by status (every state, zeros included) and by sector, at the end of `as_of`
    (default today, UTC)."""
    if (cached := view.hit()) is not None:
        return cached
    point = point_in_time(as_of or today_utc(), known_at)
    assert point is not None
    async with view.session() as session:
        total, by_status, by_sector = await service.summary(session, point, roadmap)
    return view.answer(
        SummaryRead(as_of=point.as_of, total=total, by_status=by_status, by_sector=by_sector)
    )


@router.get("/timeline", response_model=TimelineRead)
async def timeline(
    view: ComputedView,
    start: Annotated[date, Query(description="First day")],
    end: Annotated[date | None, Query(description="Last day (default today, UTC)")] = None,
    interval: Interval = Interval.MONTH,
    roadmap: RoadmapFilter = None,
    known_at: KnownAtQuery = None,
) -> Response:
    """Programmes in each state at the end of each interval: a cumulative-flow diagram."""
    if (cached := view.hit()) is not None:
        return cached
    last = end or today_utc()
    if start > last:
        raise InvalidInput(f"start {start} is after end {last}.")
    points = interval_ends(start, last, interval, at_most=service.MAX_POINTS)
    if len(points) > service.MAX_POINTS:
        raise InvalidInput(
            f"From {start} to {last} by {interval.value} is more than {service.MAX_POINTS} "
            "points; use a longer interval or a shorter range."
        )
    known = known_at_utc(known_at)  # refused before a session is opened, like the range
    async with view.session() as session:
        counts = await service.timeline(session, points, roadmap=roadmap, known_at=known)
    return view.answer(
        TimelineRead(
            interval=interval.value,
            points=[TimelinePoint(date=day, by_status=counts[day]) for day in points],
        )
    )
