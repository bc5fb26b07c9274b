from typing import Annotated

from fastapi import APIRouter, Path

from service.db import SessionDep
from service.errors import problem_responses
from service.roadmaps import service
from service.roadmaps.schemas import RoadmapList, RoadmapRead
from service.schemas import Text

router = APIRouter(prefix="/roadmaps", tags=["roadmaps"])


@router.get("", response_model=RoadmapList)
async def list_roadmaps(session: SessionDep) -> RoadmapList:
    return RoadmapList(items=await service.list_roadmaps(session))


@router.get("/{code}", response_model=RoadmapRead, responses=problem_responses(404))
async def get_roadmap(
    code: Annotated[Text, Path(max_length=64)], session: SessionDep
) -> RoadmapRead:
    return await service.get_roadmap(session, code)
