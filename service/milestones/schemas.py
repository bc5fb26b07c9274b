from datetime import date

from pydantic import Field

from service.audit.schemas import EventRead
from service.milestones.rules import MilestoneState
from service.programs.schemas import ProgramRead
from service.schemas import LongText, ReadModel, RequestModel, ShortText, SourceUrl, Timestamp


class MilestoneCreate(RequestModel):
    title: ShortText
    due_date: date | None = None
    done_date: date | None = Field(default=None, description="Not in the future.")
    source_url: SourceUrl | None = None
    note: LongText | None = None


class MilestoneUpdate(RequestModel):
    """Fields to change; an explicit null clears a date, the source or the note."""

    title: ShortText | None = None
    due_date: date | None = None
    done_date: date | None = None
    source_url: SourceUrl | None = None
    note: LongText | None = None


class MilestoneRead(ReadModel):
    id: int
    program: str
    title: str
    due_date: date | None
    done_date: date | None
    state: MilestoneState
    source_url: str | None
    sources: list[str]
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp


class MilestoneList(ReadModel):
    items: list[MilestoneRead]


class MilestoneChange(ReadModel):
    milestone: MilestoneRead
    program: ProgramRead
    event: EventRead | None
