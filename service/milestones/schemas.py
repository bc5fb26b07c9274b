from datetime import date

from pydantic import Field

from service.audit.schemas import EventRead
from service.programs.schemas import ProgramRead
from service.rules.milestones import MilestoneState
from service.schemas import LongText, ReadModel, RequestModel, ShortText, SourceUrl, Timestamp

SET_ON = "The date of the act that set the milestone (default today; not in the future)."


class MilestoneCreate(RequestModel):
    title: ShortText
    due_date: date | None = None
    done_date: date | None = Field(default=None, description="Not in the future.")
    set_on: date | None = Field(default=None, description=SET_ON)
    source_url: SourceUrl | None = None
    note: LongText | None = None


class MilestoneUpdate(RequestModel):
    """Fields to change; an explicit null clears a date, the source or the note."""

    title: ShortText | None = None
    due_date: date | None = None
    done_date: date | None = None
    set_on: date | None = Field(default=None, description=SET_ON)
    source_url: SourceUrl | None = None
    note: LongText | None = None


class MilestoneRead(ReadModel):
    id: int
    program: str
    title: str
    due_date: date | None
    done_date: date | None
    set_on: date
    state: MilestoneState
    source_url: str | None
    sources: list[str]
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp


class MilestoneList(ReadModel):
    items: list[MilestoneRead]


class MilestonePage(ReadModel):
    items: list[MilestoneRead]
    next_cursor: str | None


class MilestoneChange(ReadModel):
    milestone: MilestoneRead
    program: ProgramRead
    event: EventRead | None
