"""The HTTP parameters that name a programme, a point in time or a change's preconditions,
for every router that takes them (routers import these, never each other)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request

from service.auth.dependencies import Caller
from service.calendar_dates import ACCEPTED_FORMS, CalendarDay
from service.errors import InvalidInput, PreconditionRequired
from service.programs.service import Actor, PointInTime
from service.rules.workflow import Status
from service.schemas import Text

ProgramCode = Annotated[Text, Path(max_length=64, description="The programme's code")]
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The programme's ETag as last read; a stale one is refused with 412.",
    ),
]


async def if_match_precondition(request: Request, if_match: IfMatchHeader = None) -> str | None:
    """The If-Match a change carries; with ROADMAP_REQUIRE_IF_MATCH it must carry one."""
    if if_match is None and request.app.state.settings.require_if_match:
        raise PreconditionRequired(
            "This server requires If-Match with the programme's ETag on every change."
        )
    return if_match


IfMatchDep = Annotated[str | None, Depends(if_match_precondition)]


def if_match_required(request: Request) -> bool:
    """ROADMAP_REQUIRE_IF_MATCH, for a change whose preconditions are in its body (a decision's
    steps each name the version they were read at)."""
    required: bool = request.app.state.settings.require_if_match
    return required


IfMatchRequiredDep = Annotated[bool, Depends(if_match_required)]


def sources_required(request: Request) -> bool:
    """ROADMAP_REQUIRE_SOURCES: whether a status change must cite a source."""
    required: bool = request.app.state.settings.require_sources
    return required


SourcesRequiredDep = Annotated[bool, Depends(sources_required)]


def dry_run_response(model: type) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entry for the 200 a write answers with ?dry_run=true."""
    preview = "dry_run=true: what would be recorded; nothing was written"
    return {200: {"model": model, "description": preview}}


DryRunQuery = Annotated[
    bool,
    Query(
        description="Preview: answer 200 with exactly what would be recorded (or the problem a "
        "real call would get) and write nothing. An Idempotency-Key is not used.",
    ),
]
AsOfQuery = Annotated[
    CalendarDay | None,
    Query(
        description="Show programmes as they stood at the end of this day (effective dates): "
        + ACCEPTED_FORMS
    ),
]
KnownAtQuery = Annotated[
    datetime | None,
    Query(
        description="…as recorded by this moment (ISO 8601 with a zone): corrections recorded "
        "later do not change what was shown then. Needs as_of on programme reads."
    ),
]


def point_in_time(as_of: date | None, known_at: datetime | None) -> PointInTime | None:
    if as_of is None:
        if known_at is not None:
            raise InvalidInput("known_at needs as_of.")
        return None
    return PointInTime(as_of=as_of, known_at=known_at_utc(known_at))


def known_at_utc(known_at: datetime | None) -> datetime | None:
    """A known_at moment in UTC; it must say its zone."""
    if known_at is None:
        return None
    if known_at.tzinfo is None:
        raise InvalidInput("known_at needs a time zone, e.g. 2024-01-01T00:00:00Z.")
    try:
        return known_at.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidInput("known_at falls outside years 1–9999 in UTC.") from None


def actor_of(editor: Caller, claimed: str | None) -> Actor:
    """The key's name is the actor; what the client says goes only into `on_behalf_of`."""
    assert editor.name is not None  # EditorDep admits named keys only
    return Actor(name=editor.name, on_behalf_of=claimed)


@dataclass
class ProgramFilters:
    """What GET /programs and programs.csv filter by, as one dependency."""

    status: Annotated[Status | None, Query(alias="status")] = None
    sector: Annotated[Text | None, Query(max_length=100)] = None
    roadmap: Annotated[Text | None, Query(max_length=64)] = None
    q: Annotated[
        Text | None, Query(max_length=200, description="Substring of the English or Russian title")
    ] = None
    overdue: Annotated[
        bool | None,
        Query(description="Only programmes with (true) or without (false) overdue milestones"),
    ] = None
    as_of: AsOfQuery = None
    known_at: KnownAtQuery = None

    def selection(self) -> dict[str, Any]:
        """The keyword arguments of programs.service.list_programs; a known_at without as_of
        is refused here, before anything is read."""
        return {
            "status": self.status,
            "sector": self.sector,
            "roadmap": self.roadmap,
            "q": self.q,
            "overdue": self.overdue,
            "point": point_in_time(self.as_of, self.known_at),
        }


ProgramFiltersDep = Annotated[ProgramFilters, Depends()]
