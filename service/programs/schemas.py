from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from service.audit.schemas import EventRead
from service.auth.reserved import reserved_name_in
from service.rules.workflow import Status
from service.schemas import (
    Citations,
    Code,
    LongText,
    Name,
    ReadModel,
    RequestModel,
    ShortText,
    SourceUrl,
    Text,
    Timestamp,
)

Sector = Annotated[Text, StringConstraints(min_length=1, max_length=100)]
LeadBodies = Annotated[Text, StringConstraints(max_length=1000)]


def _not_reserved(name: str) -> str:
    reserved = reserved_name_in(name)
    if reserved is not None:
        raise ValueError(f"{reserved!r} is the service's own name; it cannot be claimed")
    return name


OnBehalfOf = Annotated[
    Name | None,
    AfterValidator(lambda name: name if name is None else _not_reserved(name)),
    Field(
        description="Who the change is made for; recorded with the event as on_behalf_of. "
        "The service's own names (seed, system, anonymous) cannot be claimed.",
    ),
]


class ChangeContext(RequestModel):
    """What an editor may say about a change: it goes into the event, not the programme."""

    note: LongText | None = None
    source_url: SourceUrl | None = None
    actor: OnBehalfOf = None


class ProgramCreate(ChangeContext):
    code: Code
    title: ShortText
    title_ru: ShortText | None = None
    title_official: bool = False
    number: int | None = Field(default=None, ge=1, le=10_000)
    sector: Sector | None = None
    lead_bodies: LeadBodies | None = None
    summary: LongText | None = None
    roadmap: Code = "union-state-2021-2023"


class ProgramUpdate(ChangeContext):
    """Descriptive fields only: the status changes through transitions, nothing else."""

    title: ShortText | None = None
    title_ru: ShortText | None = None
    sector: Sector | None = None
    lead_bodies: LeadBodies | None = None
    summary: LongText | None = None


DESCRIPTIVE_FIELDS = ("title", "title_ru", "sector", "lead_bodies", "summary")


class TransitionRequest(ChangeContext):
    to_status: Status
    effective_date: date | None = Field(
        default=None, description="When it happened; defaults to today (UTC)."
    )
    sources: Citations | None = None


class CorrectionRequest(RequestModel):
    """Voids the programme's latest status change (it stays in the history) and puts the
    programme back in the status it had before."""

    event: int = Field(ge=1, description="The seq of the programme's latest status event.")
    reason: Annotated[LongText, StringConstraints(min_length=1)] = Field(
        description="Why the change was wrong; recorded as the correction's note."
    )
    source_url: SourceUrl | None = None
    sources: Citations | None = None
    actor: OnBehalfOf = None


class ProgressRead(ReadModel):
    milestones_total: int
    milestones_done: int
    milestones_overdue: int = Field(
        description="Not done, past their due date, while the programme is still open."
    )
    milestones_missed: int = Field(
        description="Not done when the programme closed (completed, carried over, withdrawn)."
    )
    next_due_date: date | None = Field(
        description="The earliest due date, today or later, among milestones not yet done "
        "(none once the programme has closed)."
    )


class ProgramRead(ReadModel):
    code: str
    number: int | None
    title: str
    title_ru: str | None
    title_official: bool
    sector: str | None
    lead_bodies: str | None
    summary: str | None
    sources: list[str]
    roadmap: str
    status: Status
    status_label: str
    status_effective_date: date
    version: int
    created_at: Timestamp
    updated_at: Timestamp
    progress: ProgressRead


class ProgramPage(ReadModel):
    items: list[ProgramRead]
    next_cursor: str | None


class ProgramChange(ReadModel):
    """The answer to a write: the programme as it now stands and the event that recorded it."""

    program: ProgramRead
    event: EventRead


class ProgramPatchResult(ReadModel):
    """A PATCH that changes nothing writes no event: `event` is then null."""

    program: ProgramRead
    event: EventRead | None
