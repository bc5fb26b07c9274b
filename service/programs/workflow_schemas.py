"""The workflow table as GET /api/v1/workflow publishes it (rules.workflow stays pure)."""

from pydantic import Field

from service.rules.workflow import Status
from service.schemas import ReadModel


class WorkflowStateRead(ReadModel):
    name: Status
    label: str
    initial: bool
    terminal: bool


class WorkflowTransitionRead(ReadModel):
    name: str
    # `from` is a Python keyword; the published name is kept.
    from_: Status = Field(alias="from")
    to: Status


class WorkflowRead(ReadModel):
    states: list[WorkflowStateRead]
    transitions: list[WorkflowTransitionRead]
