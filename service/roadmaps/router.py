from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from service.auth.dependencies import AdminDep, EditorDep
from service.caching import ComputedView
from service.db import SessionDep
from service.errors import problem_responses
from service.idempotency.http import IdempotencyKeyHeader, respond_to_write
from service.roadmaps import service
from service.roadmaps.schemas import (
    ProgressReportCreate,
    ProgressReportList,
    ProgressReportRead,
    RoadmapCreate,
    RoadmapList,
    RoadmapRead,
)
from service.schemas import Text

router = APIRouter(prefix="/roadmaps", tags=["roadmaps"])

RoadmapCode = Annotated[Text, Path(max_length=64)]


@router.get("", response_model=RoadmapList)
async def list_roadmaps(view: ComputedView) -> Response:
    if (cached := view.hit()) is not None:
        return cached
    async with view.session() as session:
        return view.answer(RoadmapList(items=await service.list_roadmaps(session)))


@router.post("", response_model=RoadmapRead, status_code=201, responses=problem_responses(409))
async def create_roadmap(
    data: RoadmapCreate,
    _admin: AdminDep,
    request: Request,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[RoadmapRead, dict[str, str]]:
        roadmap = await service.create_roadmap(session, data)
        return roadmap, {"Location": f"/api/v1/roadmaps/{roadmap.code}"}

    return await respond_to_write(request, session, idempotency_key, work, status_code=201)


@router.get("/{code}", response_model=RoadmapRead, responses=problem_responses(404))
async def get_roadmap(code: RoadmapCode, view: ComputedView) -> Response:
    """The roadmap with its programmes counted by status, its milestones and latest progress."""
    if (cached := view.hit()) is not None:
        return cached
    async with view.session() as session:
        return view.answer(await service.get_roadmap(session, code))


@router.get("/{code}/progress", response_model=ProgressReportList, responses=problem_responses(404))
async def list_progress(code: RoadmapCode, view: ComputedView) -> Response:
    """Dated statements of how much of the roadmap is done, oldest first."""
    if (cached := view.hit()) is not None:
        return cached
    async with view.session() as session:
        reports = await service.list_progress(session, code)
    return view.answer(ProgressReportList(items=reports))


@router.post(
    "/{code}/progress",
    response_model=ProgressReportRead,
    status_code=201,
    responses=problem_responses(404, 409, 422),
)
async def add_progress(
    code: RoadmapCode,
    data: ProgressReportCreate,
    editor: EditorDep,
    request: Request,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def work() -> tuple[ProgressReportRead, dict[str, str]]:
        report = await service.add_progress(session, code, data, recorded_by=editor.name or "")
        return report, {}

    return await respond_to_write(request, session, idempotency_key, work, status_code=201)
