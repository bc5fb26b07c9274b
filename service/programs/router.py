from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.schemas import EventPage
from service.audit.service import event_read, program_history
from service.auth.dependencies import EditorDep
from service.caching import (
    ComputedView,
    Validation,
    View,
    ViewCache,
    check_not_modified,
    view_key,
)
from service.clock import today_utc
from service.conditions import etag_for_version
from service.db import open_session, single_statements
from service.errors import NotFound, problem_responses
from service.models.events import Event
from service.pagination import (
    DEFAULT_LIMIT,
    MAX_INTEGER_KEY,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from service.programs import service
from service.programs.corrections import correct_status
from service.programs.dependencies import (
    AsOfQuery,
    DryRunQuery,
    IfMatchDep,
    KnownAtQuery,
    ProgramCode,
    ProgramFiltersDep,
    SourcesRequiredDep,
    actor_of,
    dry_run_response,
    point_in_time,
)
from service.programs.schemas import (
    CorrectionRequest,
    ProgramChange,
    ProgramCreate,
    ProgramPage,
    ProgramPatchResult,
    ProgramRead,
    ProgramUpdate,
    TransitionRequest,
)
from service.programs.service import PointInTime, ProgramRow, program_read
from service.programs.workflow_schemas import WorkflowRead
from service.rules.workflow import workflow_document
from service.schemas import Text
from service.unit_of_work import UnitOfWorkDep

router = APIRouter(prefix="/programs", tags=["programs"])
# The workflow every programme follows, at /workflow.
workflow_router = APIRouter(tags=["workflow"])


@workflow_router.get("/workflow")
async def get_workflow() -> WorkflowRead:
    """The states of a programme and the transitions allowed between them."""
    return WorkflowRead.model_validate(workflow_document())


@router.get("", response_model=ProgramPage, responses=problem_responses(422))
async def list_programs(
    view: ComputedView,
    filters: ProgramFiltersDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    async def compute(session: AsyncSession) -> ProgramPage:
        after_id = decode_cursor(cursor, arity=1, max_key=MAX_INTEGER_KEY)[0] if cursor else 0
        rows = await service.list_programs(
            session,
            after_id=after_id,
            limit=limit,
            **filters.selection(),
        )
        next_cursor = encode_cursor(rows[-1].program.id) if len(rows) == limit else None
        return ProgramPage(items=[program_read(row) for row in rows], next_cursor=next_cursor)

    return await view.respond(compute)


@router.post(
    "",
    response_model=ProgramChange,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def create_program(
    data: ProgramCreate,
    editor: EditorDep,
    uow: UnitOfWorkDep,
) -> Response:
    async def work(session: AsyncSession) -> tuple[ProgramChange, dict[str, str]]:
        row, event = await service.create_program(session, data, actor_of(editor, data.actor))
        change = ProgramChange(program=program_read(row), event=event_read(event, row.program.code))
        return change, {
            "Location": f"/api/v1/programs/{row.program.code}",
            "ETag": etag_for_version(row.program.version),
        }

    return await uow.answer(work, status_code=201)


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
    validation = service.version_validation(code)
    version = await service.current_version(single_statements(request), validation)
    if version is None:
        raise NotFound(f"There is no programme with code {code!r}.")
    view = program_view(request, validation, version, point, today)
    check_not_modified(request, view.etag)
    cache: ViewCache = request.app.state.view_cache
    if (cached := cache.get(view)) is not None:
        return cached
    async with open_session(request) as session:
        row = await service.get_program(session, code, point, today=today)
    # A change may have committed since the version was read: tag the answer with its own.
    answer = program_view(request, validation, row.program.version, point, today)
    return cache.put(answer, program_read(row), request.scope)


def program_view(
    request: Request,
    validation: Validation,
    version: int,
    point: PointInTime | None,
    today: date,
) -> View:
    """The strong ETag is the one If-Match checks; an as-of view is another representation.
    Milestone figures (overdue, next due) also depend on the day, so the cache entry does."""
    etag = etag_for_version(version)
    if point is not None:
        etag = f'W/"{version}-{point.as_of}-{point.known_at}"'
    return View(view_key(request), validation.validator([version], today), etag, validation)


@router.patch(
    "/{code}",
    response_model=ProgramPatchResult,
    responses=problem_responses(404, 409, 412, 422, 428),
)
async def update_program(
    code: ProgramCode,
    data: ProgramUpdate,
    editor: EditorDep,
    if_match: IfMatchDep,
    uow: UnitOfWorkDep,
) -> Response:
    async def work(session: AsyncSession) -> tuple[ProgramPatchResult, dict[str, str]]:
        row, event = await service.update_program(
            session, code, data, actor_of(editor, data.actor), if_match=if_match
        )
        result = ProgramPatchResult(
            program=program_read(row),
            event=event_read(event, row.program.code) if event else None,
        )
        return result, {"ETag": etag_for_version(row.program.version)}

    return await uow.answer(work, status_code=200)


@router.post(
    "/{code}/transitions",
    response_model=ProgramChange,
    status_code=status.HTTP_201_CREATED,
    responses=dry_run_response(ProgramChange) | problem_responses(404, 409, 412, 422, 428),
)
async def transition_program(
    code: ProgramCode,
    transition: TransitionRequest,
    editor: EditorDep,
    if_match: IfMatchDep,
    sources_required: SourcesRequiredDep,
    uow: UnitOfWorkDep,
    dry_run: DryRunQuery = False,
) -> Response:
    """Move the programme to another status (GET /workflow lists the allowed steps)."""

    async def work(session: AsyncSession) -> tuple[ProgramChange, dict[str, str]]:
        row, event = await service.transition_program(
            session,
            code,
            transition,
            actor_of(editor, transition.actor),
            if_match=if_match,
            require_source=sources_required,
        )
        return status_changed(row, event)

    return await uow.answer(work, status_code=201, dry_run=dry_run)


@router.post(
    "/{code}/corrections",
    response_model=ProgramChange,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 412, 422, 428),
)
async def correct_program_status(
    code: ProgramCode,
    correction: CorrectionRequest,
    editor: EditorDep,
    if_match: IfMatchDep,
    sources_required: SourcesRequiredDep,
    uow: UnitOfWorkDep,
) -> Response:
    """Void the programme's latest status change, which was recorded wrongly: a `corrected`
    event puts the programme back in the status it had before. Nothing is edited or removed."""

    async def work(session: AsyncSession) -> tuple[ProgramChange, dict[str, str]]:
        row, event = await correct_status(
            session,
            code,
            correction,
            actor_of(editor, correction.actor),
            if_match=if_match,
            require_source=sources_required,
        )
        return status_changed(row, event)

    return await uow.answer(work, status_code=201)


def status_changed(row: ProgramRow, event: Event) -> tuple[ProgramChange, dict[str, str]]:
    """The answer to a status change: the programme as it now stands, with its new ETag."""
    change = ProgramChange(program=program_read(row), event=event_read(event, row.program.code))
    return change, {"ETag": etag_for_version(row.program.version)}


@router.get("/{code}/history", response_model=EventPage, responses=problem_responses(404, 422))
async def program_history_page(
    code: ProgramCode,
    view: ComputedView,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    async def compute(session: AsyncSession) -> EventPage:
        after_seq = decode_cursor(cursor, arity=1, max_key=MAX_INTEGER_KEY)[0] if cursor else 0
        program = (await service.get_program(session, code)).program
        rows = await program_history(
            session, program_id=program.id, after_seq=after_seq, limit=limit
        )
        next_cursor = encode_cursor(rows[-1].event.seq) if len(rows) == limit else None
        return EventPage(items=[event_read(*row) for row in rows], next_cursor=next_cursor)

    return await view.respond(compute)
