from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import event_read
from service.auth.dependencies import EditorDep
from service.caching import ComputedView
from service.clock import today_utc
from service.conditions import etag_for_version
from service.errors import problem_responses
from service.milestones import service
from service.milestones.schemas import (
    MilestoneChange,
    MilestoneCreate,
    MilestoneList,
    MilestonePage,
    MilestoneUpdate,
)
from service.models.events import Event
from service.models.milestones import Milestone
from service.pagination import (
    DEFAULT_LIMIT,
    MAX_INTEGER_KEY,
    LimitQuery,
    decode_cursor,
    encode_cursor,
)
from service.programs.dependencies import IfMatchDep, ProgramCode, actor_of
from service.programs.service import ProgramRow, get_program, program_read
from service.rules.milestones import MilestoneState
from service.schemas import Text
from service.unit_of_work import UnitOfWorkDep

router = APIRouter(prefix="/programs/{code}/milestones", tags=["milestones"])
# Milestones of every programme, for a deadline dashboard.
all_milestones_router = APIRouter(prefix="/milestones", tags=["milestones"])

MilestoneId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@all_milestones_router.get("", response_model=MilestonePage, responses=problem_responses(422))
async def find_milestones(
    view: ComputedView,
    program: Annotated[Text | None, Query(max_length=64)] = None,
    roadmap: Annotated[Text | None, Query(max_length=64)] = None,
    state: Annotated[MilestoneState | None, Query(description="State today (UTC)")] = None,
    due_before: Annotated[date | None, Query(description="Due before this day")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    async def compute(session: AsyncSession) -> MilestonePage:
        after_id = decode_cursor(cursor, arity=1, max_key=MAX_INTEGER_KEY)[0] if cursor else 0
        items = await service.find_milestones(
            session,
            after_id=after_id,
            limit=limit,
            program=program,
            roadmap=roadmap,
            state=state,
            due_before=due_before,
        )
        next_cursor = encode_cursor(items[-1].id) if len(items) == limit else None
        return MilestonePage(items=items, next_cursor=next_cursor)

    return await view.respond(compute)


def _milestone_change(
    milestone: Milestone, row: ProgramRow, event: Event | None
) -> MilestoneChange:
    code = row.program.code
    return MilestoneChange(
        milestone=service.milestone_read(milestone, code, row.program.status, today_utc()),
        program=program_read(row),
        event=event_read(event, code) if event else None,
    )


@router.get("", response_model=MilestoneList, responses=problem_responses(404))
async def list_milestones(code: ProgramCode, view: ComputedView) -> Response:
    async def compute(session: AsyncSession) -> MilestoneList:
        milestones = await service.list_milestones(session, code)
        return MilestoneList(items=milestones)

    return await view.respond(compute)


@router.post(
    "",
    response_model=MilestoneChange,
    status_code=201,
    responses=problem_responses(404, 409, 412, 428),
)
async def add_milestone(
    code: ProgramCode,
    data: MilestoneCreate,
    editor: EditorDep,
    if_match: IfMatchDep,
    uow: UnitOfWorkDep,
) -> Response:
    async def work(session: AsyncSession) -> tuple[MilestoneChange, dict[str, str]]:
        milestone, _, event = await service.add_milestone(
            session, code, data, actor_of(editor, None), if_match=if_match
        )
        row = await get_program(session, code)  # progress now counts the new milestone
        return _milestone_change(milestone, row, event), {
            "Location": f"/api/v1/programs/{code}/milestones/{milestone.id}",
            "ETag": etag_for_version(row.program.version),
        }

    return await uow.answer(work, status_code=201)


@router.patch(
    "/{milestone_id}",
    response_model=MilestoneChange,
    responses=problem_responses(404, 409, 412, 428),
)
async def update_milestone(
    code: ProgramCode,
    milestone_id: MilestoneId,
    data: MilestoneUpdate,
    editor: EditorDep,
    if_match: IfMatchDep,
    uow: UnitOfWorkDep,
) -> Response:
    async def work(session: AsyncSession) -> tuple[MilestoneChange, dict[str, str]]:
        milestone, _, event = await service.update_milestone(
            session, code, milestone_id, data, actor_of(editor, None), if_match=if_match
        )
        row = await get_program(session, code)
        change = _milestone_change(milestone, row, event)
        return change, {"ETag": etag_for_version(row.program.version)}

    return await uow.answer(work, status_code=200)
