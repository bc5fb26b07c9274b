"""Counts for dashboards: wide JSON by default, long rows with `?format=long`, and the same long
rows as CSV at `/summary.csv` and `/timeline.csv`. Every answer is a computed view (caching.py):
an ETag per path and query, 304s, and this worker's last answer reused while the data stands."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Response

from service.caching import CachedView, ComputedView
from service.calendar_dates import ACCEPTED_FORMS, CalendarDay
from service.clock import today_utc
from service.errors import InvalidInput, problem_responses
from service.programs.dependencies import AsOfQuery, KnownAtQuery, known_at_utc, point_in_time
from service.schemas import Text
from service.stats import service
from service.stats.intervals import Interval, interval_ends
from service.stats.long_format import StatsFormat, rows_csv, summary_rows, timeline_rows
from service.stats.schemas import (
    StatusCountRead,
    StatusCountRows,
    SummaryRead,
    TimelinePoint,
    TimelineRead,
)

router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(422))

RoadmapFilter = Annotated[Text | None, Query(max_length=64)]
FormatQuery = Annotated[
    StatsFormat,
    Query(
        alias="format",
        description="`wide` (default): one object per date with a count per status; `long`: "
        "rows of {date, status, count}, every status at every date, zeros included.",
    ),
]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The long rows as CSV: a `date,status,count` header, then one row each.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@dataclass
class SummaryQuery:
    as_of: AsOfQuery = None
    known_at: KnownAtQuery = None
    roadmap: RoadmapFilter = None

    async def compute(self, view: CachedView) -> SummaryRead:
        point = point_in_time(self.as_of or today_utc(), self.known_at)
        assert point is not None
        async with view.session() as session:
            total, by_status, by_sector = await service.summary(session, point, self.roadmap)
        return SummaryRead(as_of=point.as_of, total=total, by_status=by_status, by_sector=by_sector)


@dataclass
class TimelineQuery:
    start: Annotated[CalendarDay, Query(description="First day: " + ACCEPTED_FORMS)]
    end: Annotated[
        CalendarDay | None, Query(description="Last day (default today, UTC): " + ACCEPTED_FORMS)
    ] = None
    interval: Interval = Interval.MONTH
    roadmap: RoadmapFilter = None
    known_at: KnownAtQuery = None

    async def compute(self, view: CachedView) -> TimelineRead:
        start, last, interval = self.start, self.end or today_utc(), self.interval
        if start > last:
            raise InvalidInput(f"start {start} is after end {last}.")
        points = interval_ends(start, last, interval, at_most=service.MAX_POINTS)
        if len(points) > service.MAX_POINTS:
            raise InvalidInput(
                f"From {start} to {last} by {interval.value} is more than {service.MAX_POINTS} "
                "points; use a longer interval or a shorter range."
            )
        known = known_at_utc(self.known_at)  # refused before a session is opened, like the range
        async with view.session() as session:
            counts = await service.timeline(session, points, roadmap=self.roadmap, known_at=known)
        return TimelineRead(
            interval=interval.value,
            points=[TimelinePoint(date=day, by_status=counts[day]) for day in points],
        )


SummaryDep = Annotated[SummaryQuery, Depends()]
TimelineDep = Annotated[TimelineQuery, Depends()]


Wide = TypeVar("Wide", SummaryRead, TimelineRead)


async def wide_or_long(
    view: CachedView,
    format_: StatsFormat,
    compute: Callable[[], Awaitable[Wide]],
    long_rows: Callable[[Wide], list[StatusCountRead]],
) -> Response:
    """The JSON answer in the format asked for: this worker's last one if the data stands."""
    if (cached := view.hit()) is not None:
        return cached
    wide = await compute()
    return view.answer(StatusCountRows(long_rows(wide)) if format_ is StatsFormat.LONG else wide)


async def long_csv(
    view: CachedView,
    compute: Callable[[], Awaitable[Wide]],
    long_rows: Callable[[Wide], list[StatusCountRead]],
) -> Response:
    """The long rows as CSV, cached and tagged like the JSON (the tag is the CSV's own: the
    path is part of the view)."""
    if (cached := view.hit()) is not None:
        return cached
    return view.answer_text(rows_csv(long_rows(await compute())), CSV_MEDIA_TYPE)


@router.get("/summary", response_model=SummaryRead | StatusCountRows)
async def summary(
    view: ComputedView, query: SummaryDep, format_: FormatQuery = StatsFormat.WIDE
) -> Response:
    """Programmes by status (every state, zeros included) and by sector, at the end of `as_of`
    (default today, UTC); `format=long`: one row per status."""
    return await wide_or_long(view, format_, partial(query.compute, view), summary_rows)


@router.get("/summary.csv", response_class=Response, responses=CSV_RESPONSES)
async def summary_csv(view: ComputedView, query: SummaryDep) -> Response:
    """The summary's long rows as CSV: `date,status,count`, one row per status."""
    return await long_csv(view, partial(query.compute, view), summary_rows)


@router.get("/timeline", response_model=TimelineRead | StatusCountRows)
async def timeline(
    view: ComputedView, query: TimelineDep, format_: FormatQuery = StatsFormat.WIDE
) -> Response:
    """Programmes in each state at the end of each interval: a cumulative-flow diagram;
    `format=long`: one row per point and status."""
    return await wide_or_long(view, format_, partial(query.compute, view), timeline_rows)


@router.get("/timeline.csv", response_class=Response, responses=CSV_RESPONSES)
async def timeline_csv(view: ComputedView, query: TimelineDep) -> Response:
    """The timeline's long rows as CSV: `date,status,count`, one row per point and status."""
    return await long_csv(view, partial(query.compute, view), timeline_rows)
