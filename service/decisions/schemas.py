import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from service.audit.schemas import EventRead
from service.programs.schemas import OnBehalfOf
from service.rules.workflow import Refused, Status
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


class DecisionTransition(RequestModel):
    program: Code
    to_status: Status
    version: int | None = Field(
        default=None,
        ge=0,
        description="The programme's version (its ETag) as last read: if it has changed since, "
        "nothing is recorded (412). Required on every step where the server requires If-Match.",
    )


class DecisionCreate(RequestModel):
    code: Code = Field(description="The decision's own code, e.g. ssc-decree-6-2021.")
    title: ShortText
    title_ru: ShortText | None = None
    body: Name = Field(
        description='Who decided: "Supreme State Council", "Council of Ministers", "Presidents", …'
    )
    number: Annotated[Text, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description='The act\'s number, where it has one ("6").'
    )
    date: dt.date = Field(description="Its effective date, the date of every change it makes.")
    source_url: SourceUrl | None = None
    sources: Citations | None = None
    note: LongText | None = None
    actor: OnBehalfOf = None
    transitions: list[DecisionTransition] = Field(
        min_length=1,
        max_length=1000,
        description="The status changes it makes, applied in this order (a programme may "
        "appear more than once, each step from where the one before left it); all or none.",
    )


class DecisionRead(ReadModel):
    code: str
    title: str
    title_ru: str | None
    body: str
    number: str | None
    date: dt.date
    source_url: str | None
    sources: list[str]
    note: str | None
    actor: str
    on_behalf_of: str | None
    recorded_at: Timestamp
    programs: list[str] = Field(description="The programmes it moved, by code.")


class DecisionChange(ReadModel):
    """A decision with the events it wrote (or, for an older event, was attributed)."""

    decision: DecisionRead
    events: list[EventRead]


class DecisionPage(ReadModel):
    items: list[DecisionRead]
    next_cursor: str | None


class TransitionRefusal(ReadModel):
    """One step of a decision that cannot be made, in a 409 problem's `errors`."""

    program: str
    to_status: Status
    refused: Refused = Field(
        description="step: the workflow has no such step from the current status; "
        "date: the decision is dated before the current status."
    )
    current_status: Status
    status_effective_date: dt.date
    allowed_targets: list[Status]
    reason: str
