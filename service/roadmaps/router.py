from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.dependencies import AdminDep, EditorDep
from service.caching import ComputedView
from service.errors import problem_responses
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
from service.unit_of_work import UnitOfWorkDep

router = APIRouter(prefix="/roadmaps", tags=["roadmaps"])

RoadmapCode = Annotated[Text, Path(max_length=64)]


@router.get("", response_model=RoadmapList)
async def list_roadmaps(view: ComputedView) -> Response:
    async def compute(session: AsyncSession) -> RoadmapList:
        return RoadmapList(items=await service.list_roadmaps(session))

    return await view.respond(compute)


@router.post("", response_model=RoadmapRead, status_code=201, responses=problem_responses(409))
async def create_roadmap(
    data: RoadmapCreate,
    _admin: AdminDep,
    uow: UnitOfWorkDep,
) -> Response:
    async def work(session: AsyncSession) -> tuple[RoadmapRead, dict[str, str]]:
        roadmap = await service.create_roadmap(session, data)
        return roadmap, {"Location": f"/api/v1/roadmaps/{roadmap.code}"}

    return await uow.answer(work, status_code=201)


@router.get("/{code}", response_model=RoadmapRead, responses=problem_responses(404))
async def get_roadmap(code: RoadmapCode, view: ComputedView) -> Response:
    """The roadmap with its programmes counted by status, its milestones and latest progress."""

    async def compute(session: AsyncSession) -> RoadmapRead:
        return await service.get_roadmap(session, code)

    return await view.respond(compute)


@router.get("/{code}/progress", response_model=ProgressReportList, responses=problem_responses(404))
async def list_progress(code: RoadmapCode, view: ComputedView) -> Response:
    """Dated statements of how much of the roadmap is done, oldest first."""

    async def compute(session: AsyncSession) -> ProgressReportList:
        reports = await service.list_progress(session, code)
        return ProgressReportList(items=reports)

    return await view.respond(compute)


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
    uow: UnitOfWorkDep,
) -> Response:
    async def work(session: AsyncSession) -> tuple[ProgressReportRead, dict[str, str]]:
        report = await service.add_progress(session, code, data, recorded_by=editor.name or "")
        return report, {}

    return await uow.answer(work, status_code=201)
