from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from service.audit.schemas import EventPage
from service.audit.service import event_read, program_history
from service.auth.dependencies import Caller, EditorDep
from service.caching import (
    ComputedView,
    View,
    ViewCache,
    check_not_modified,
    view_key,
)
from service.calendar_dates import ACCEPTED_FORMS, CalendarDay
from service.conditions import etag_for_version
from service.db import SessionDep, open_session, single_statements
from service.errors import InvalidInput, NotFound, PreconditionRequired, problem_responses
from service.idempotency.http import IdempotencyKeyHeader, respond_to_write
from service.pagination import DEFAULT_LIMIT, LimitQuery, decode_cursor, encode_cursor
from service.programs import service
from service.programs.schemas import (
    ProgramChange,
    ProgramCreate,
    ProgramPage,
    ProgramPatchResult,
    ProgramRead,
    ProgramUpdate,
    TransitionRequest,
)
from service.programs.service import Actor, PointInTime, program_read, today_utc
from service.schemas import Text
from service.workflow import Status

router = APIRouter(prefix="/programs", tags=["programs"])

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


@router.get("", response_model=ProgramPage, responses=problem_responses(422))
async def list_programs(
    view: ComputedView,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    sector: Annotated[Text | None, Query(max_length=100)] = None,
    roadmap: Annotated[Text | None, Query(max_length=64)] = None,
    q: Annotated[Text | None, Query(max_length=200, description="Substring of the title")] = None,
    overdue: Annotated[
        bool | None,
        Query(description="Only programmes with (true) or without (false) overdue milestones"),
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    as_of: AsOfQuery = None,
    known_at: KnownAtQuery = None,
) -> Response:
    if (cached := view.hit()) is not None:
        return cached
    after_id = decode_cursor(cursor, arity=1)[0] if cursor else 0
    async with view.session() as session:
        rows = await service.list_programs(
            session,
            after_id=after_id,
            limit=limit,
            status=status_,
            sector=sector,
            roadmap=roadmap,
            q=q,
            overdue=overdue,
            point=point_in_time(as_of, known_at),
        )
    next_cursor = encode_cursor(rows[-1].program.id) if len(rows) == limit else None
    return view.answer(
        ProgramPage(items=[program_read(row) for row in rows], next_cursor=next_cursor)
    )


@router.post(
    "",
    response_model=ProgramChange,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def create_program(
    data: ProgramCreate,
    editor: EditorDep,
    request: Request,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[ProgramChange, dict[str, str]]:
        row, event = await service.create_program(session, data, actor_of(editor, data.actor))
        change = ProgramChange(program=program_read(row), event=event_read(event, row.program.code))
        return change, {
            "Location": f"/api/v1/programs/{row.program.code}",
            "ETag": etag_for_version(row.program.version),
        }

    return await respond_to_write(request, session, idempotency_key, work, status_code=201)


@router.get("/{code}", response_model=ProgramRead, responses=problem_responses(404, 422))
async def get_program(
    code: ProgramCode,
    request: Request,
    as_of: AsOfQuery = None,
    known_at: KnownAtQuery = None,
) -> Response:
    point = point_in_time(as_of, known_at)
    today = today_utc()  # one day for the answer and its cache entry, even across midnight
    # Its version decides whether the client's copy or this worker's last answer will do.
    version = await service.current_version(single_statements(request), code)
    if version is None:
        raise NotFound(f"There is no programme with code {code!r}.")
    view = program_view(request, version, point, today)
    check_not_modified(request, view.etag)
    cache: ViewCache = request.app.state.view_cache
    if (cached := cache.get(view)) is not None:
        return cached
    async with open_session(request) as session:
        row = await service.get_program(session, code, point, today=today)
    # A change may have committed since the version was read: tag the answer with its own.
    return cache.put(program_view(request, row.program.version, point, today), program_read(row))


def program_view(request: Request, version: int, point: PointInTime | None, today: date) -> View:
    """The strong ETag is the one If-Match checks; an as-of view is another representation.
    Milestone figures (overdue, next due) also depend on the day, so the cache entry does."""
    etag = etag_for_version(version)
    if point is not None:
        etag = f'W/"{version}-{point.as_of}-{point.known_at}"'
    return View(view_key(request), f"{version}.{today.isoformat()}", etag)


@router.patch(
    "/{code}",
    response_model=ProgramPatchResult,
    responses=problem_responses(404, 409, 412, 422, 428),
)
async def update_program(
    code: ProgramCode,
    data: ProgramUpdate,
    editor: EditorDep,
    request: Request,
    session: SessionDep,
    if_match: IfMatchDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[ProgramPatchResult, dict[str, str]]:
        row, event = await service.update_program(
            session, code, data, actor_of(editor, data.actor), if_match=if_match
        )
        result = ProgramPatchResult(
            program=program_read(row),
            event=event_read(event, row.program.code) if event else None,
        )
        return result, {"ETag": etag_for_version(row.program.version)}

    return await respond_to_write(request, session, idempotency_key, work, status_code=200)


@router.post(
    "/{code}/transitions",
    response_model=ProgramChange,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 412, 422, 428),
)
async def transition_program(
    code: ProgramCode,
    transition: TransitionRequest,
    editor: EditorDep,
    request: Request,
    session: SessionDep,
    if_match: IfMatchDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[ProgramChange, dict[str, str]]:
        row, event = await service.transition_program(
            session, code, transition, actor_of(editor, transition.actor), if_match=if_match
        )
        change = ProgramChange(program=program_read(row), event=event_read(event, row.program.code))
        return change, {"ETag": etag_for_version(row.program.version)}

    return await respond_to_write(request, session, idempotency_key, work, status_code=201)


@router.get("/{code}/history", response_model=EventPage, responses=problem_responses(404, 422))
async def program_history_page(
    code: ProgramCode,
    view: ComputedView,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    if (cached := view.hit()) is not None:
        return cached
    after_seq = decode_cursor(cursor, arity=1)[0] if cursor else 0
    async with view.session() as session:
        program = (await service.get_program(session, code)).program
        rows = await program_history(
            session, program_id=program.id, after_seq=after_seq, limit=limit
        )
    next_cursor = encode_cursor(rows[-1][0].seq) if len(rows) == limit else None
    return view.answer(
        EventPage(items=[event_read(e, c) for e, c in rows], next_cursor=next_cursor)
    )
