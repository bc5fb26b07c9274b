from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import event_read
from service.auth.dependencies import EditorDep
from service.caching import ComputedView
from service.calendar_dates import ACCEPTED_FORMS, CalendarDay
from service.decisions import service
from service.decisions.schemas import DecisionChange, DecisionCreate, DecisionPage
from service.decisions.service import DecisionRecord, decision_read
from service.errors import InvalidInput, problem_responses
from service.pagination import (
    DEFAULT_LIMIT,
    MAX_INTEGER_KEY,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from service.programs.dependencies import (
    DryRunQuery,
    IfMatchRequiredDep,
    SourcesRequiredDep,
    actor_of,
    dry_run_response,
)
from service.schemas import Text
from service.unit_of_work import UnitOfWorkDep

router = APIRouter(prefix="/decisions", tags=["decisions"])

DecisionCode = Annotated[Text, Path(max_length=64, description="The decision's code")]


def decision_change(record: DecisionRecord) -> DecisionChange:
    return DecisionChange(
        decision=decision_read(record.decision, record.programs),
        events=[event_read(*row) for row in record.events],
    )


@router.post(
    "",
    response_model=DecisionChange,
    status_code=status.HTTP_201_CREATED,
    responses=dry_run_response(DecisionChange) | problem_responses(409, 412, 422, 428),
)
async def record_decision(
    data: DecisionCreate,
    editor: EditorDep,
    sources_required: SourcesRequiredDep,
    versions_required: IfMatchRequiredDep,
    uow: UnitOfWorkDep,
    dry_run: DryRunQuery = False,
) -> Response:
    """Record an act that moves many programmes at once: every status change it lists is made,
    in one transaction, or none is (409, with `errors` naming each programme that cannot move
    and why)."""

    async def work(session: AsyncSession) -> tuple[DecisionChange, dict[str, str]]:
        record = await service.record_decision(
            session,
            data,
            actor_of(editor, data.actor),
            require_source=sources_required,
            require_versions=versions_required,
        )
        return decision_change(record), {"Location": f"/api/v1/decisions/{data.code}"}

    return await uow.answer(work, status_code=201, dry_run=dry_run)


@router.get("", response_model=DecisionPage, responses=problem_responses(422))
async def list_decisions(
    view: ComputedView,
    body: Annotated[
        Text | None, Query(max_length=200, description="Who decided (any letter case)")
    ] = None,
    roadmap: Annotated[
        Text | None, Query(max_length=64, description="Decisions that moved its programmes")
    ] = None,
    start: Annotated[
        CalendarDay | None, Query(description="Decided on or after: " + ACCEPTED_FORMS)
    ] = None,
    end: Annotated[
        CalendarDay | None, Query(description="Decided on or before: " + ACCEPTED_FORMS)
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    """The decisions, by date."""

    async def compute(session: AsyncSession) -> DecisionPage:
        after = None
        if cursor:
            day, decision_id = decode_cursor(cursor, arity=2, max_key=MAX_INTEGER_KEY)
            if not 1 <= day <= date.max.toordinal():
                raise InvalidInput("The cursor is not one this service issued.")
            after = (date.fromordinal(day), decision_id)
        rows = await service.list_decisions(
            session, after=after, limit=limit, body=body, roadmap=roadmap, start=start, end=end
        )
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1][0]
            next_cursor = encode_cursor(last.date.toordinal(), last.id)
        return DecisionPage(
            items=[decision_read(decision, programs) for decision, programs in rows],
            next_cursor=next_cursor,
        )

    return await view.respond(compute)


@router.get("/{code}", response_model=DecisionChange, responses=problem_responses(404, 422))
async def get_decision(code: DecisionCode, view: ComputedView) -> Response:
    """The decision and the events it wrote."""

    async def compute(session: AsyncSession) -> DecisionChange:
        return decision_change(await service.get_decision(session, code))

    return await view.respond(compute)
