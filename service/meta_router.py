from fastapi import APIRouter

from service.workflow import workflow_document

router = APIRouter(tags=["workflow"])


@router.get("/workflow")
async def get_workflow() -> dict[str, list[dict[str, object]]]:
    """The states of a programme and the transitions allowed between them."""
    return workflow_document()
