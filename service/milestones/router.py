from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from service.audit.service import event_read
from service.auth.dependencies import EditorDep
from service.caching import ComputedView
from service.conditions import etag_for_version
from service.db import SessionDep
from service.errors import problem_responses
from service.idempotency.http import IdempotencyKeyHeader, respond_to_write
from service.milestones import service
from service.milestones.schemas import (
    MilestoneChange,
    MilestoneCreate,
    MilestoneList,
    MilestoneUpdate,
)
from service.programs.router import IfMatchDep, ProgramCode, actor_of
from service.programs.service import get_program, program_read, today_utc

router = APIRouter(prefix="/programs/{code}/milestones", tags=["milestones"])

MilestoneId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=MilestoneList, responses=problem_responses(404))
async def list_milestones(code: ProgramCode, view: ComputedView) -> Response:
    if (cached := view.hit()) is not None:
        return cached
    today = today_utc()
    async with view.session() as session:
        milestones = await service.list_milestones(session, code)
    return view.answer(
        MilestoneList(items=[service.milestone_read(m, code, today) for m in milestones])
    )


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
    request: Request,
    session: SessionDep,
    if_match: IfMatchDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[MilestoneChange, dict[str, str]]:
        milestone, _, event = await service.add_milestone(
            session, code, data, actor_of(editor, None), if_match=if_match
        )
        row = await get_program(session, code)  # progress now counts the new milestone
        change = MilestoneChange(
            milestone=service.milestone_read(milestone, code, today_utc()),
            program=program_read(row),
            event=event_read(event, code),
        )
        return change, {
            "Location": f"/api/v1/programs/{code}/milestones/{milestone.id}",
            "ETag": etag_for_version(row.program.version),
        }

    return await respond_to_write(request, session, idempotency_key, work, status_code=201)


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
    request: Request,
    session: SessionDep,
    if_match: IfMatchDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[MilestoneChange, dict[str, str]]:
        milestone, _, event = await service.update_milestone(
            session, code, milestone_id, data, actor_of(editor, None), if_match=if_match
        )
        row = await get_program(session, code)
        change = MilestoneChange(
            milestone=service.milestone_read(milestone, code, today_utc()),
            program=program_read(row),
            event=event_read(event, code) if event else None,
        )
        return change, {"ETag": etag_for_version(row.program.version)}

    return await respond_to_write(request, session, idempotency_key, work, status_code=200)
