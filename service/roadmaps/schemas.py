import datetime as dt
from typing import Annotated

from pydantic import Field

from service.schemas import (
    Code,
    LongText,
    ReadModel,
    RequestModel,
    ShortText,
    SourceUrl,
    Text,
    Timestamp,
)

Period = Annotated[Text, Field(max_length=32)]


class RoadmapCreate(RequestModel):
    code: Code
    title: ShortText
    title_ru: ShortText | None = None
    period: Period | None = None
    note: LongText | None = None


class ProgressReportCreate(RequestModel):
    date: dt.date = Field(description="When the statement was made; not in the future.")
    measures_done_pct: int = Field(ge=0, le=100)
    measures_total: int | None = Field(default=None, ge=0, le=1_000_000)
    programs_completed: int | None = Field(default=None, ge=0, le=10_000)
    statement: Annotated[LongText, Field(min_length=1)]
    source_url: SourceUrl | None = None
    corrects: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The id of an earlier report of this roadmap that this one corrects; "
        "the earlier one stays in the record, marked as corrected.",
    )


class ProgressReportRead(ReadModel):
    id: int
    roadmap: str
    date: dt.date
    measures_done_pct: int
    measures_total: int | None
    programs_completed: int | None
    statement: str
    source_url: str | None
    sources: list[str]
    recorded_by: str
    created_at: Timestamp
    corrects: int | None = Field(description="The report this one corrects")
    corrected_by: int | None = Field(description="The report that corrects this one")


class ProgressReportList(ReadModel):
    items: list[ProgressReportRead]


class RoadmapMilestones(ReadModel):
    total: int
    done: int
    overdue: int
    missed: int


class RoadmapRead(ReadModel):
    code: str
    title: str
    title_ru: str | None
    period: str | None
    official_program_count: int | None
    note: str | None
    sources: list[str]
    created_at: Timestamp
    program_count: int
    by_status: dict[str, int]
    milestones: RoadmapMilestones
    latest_progress: ProgressReportRead | None


class RoadmapList(ReadModel):
    items: list[RoadmapRead]
