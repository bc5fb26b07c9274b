from fastapi import APIRouter

from service.workflow import workflow_document
from service.workflow_schemas import WorkflowRead

router = APIRouter(tags=["workflow"])


@router.get("/workflow")
async def get_workflow() -> WorkflowRead:
    """The states of a programme and the transitions allowed between them."""
    return WorkflowRead.model_validate(workflow_document())
