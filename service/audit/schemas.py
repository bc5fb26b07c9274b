from datetime import date
from typing import Any

from pydantic import Field

from service.rules.workflow import Status
from service.schemas import ReadModel, Timestamp


class EventRead(ReadModel):
    id: int
    program: str
    seq: int
    kind: str
    from_status: Status | None
    to_status: Status | None
    effective_date: date
    recorded_at: Timestamp
    actor: str
    on_behalf_of: str | None
    note: str | None
    source_url: str | None
    sources: list[str]
    changes: dict[str, Any] | None
    decision: str | None = Field(
        description="The decision (GET /api/v1/decisions/{code}) that made this change, if any."
    )
    decision_attributed: bool = Field(
        description="True for an event recorded before decisions existed and attributed to its "
        "decision afterwards: its hash does not cover `decision` (every other event's hash "
        "covers it when set)."
    )
    prev_hash: str
    hash: str


class EventPage(ReadModel):
    items: list[EventRead]
    next_cursor: str | None


class EventFeedPage(ReadModel):
    items: list[EventRead]
    next_cursor: str


class MismatchRead(ReadModel):
    program: str
    event_id: int | None
    reason: str


class VerifyRead(ReadModel):
    ok: bool
    programs_checked: int
    events_checked: int
    mismatches: list[MismatchRead]


class DigestRead(ReadModel):
    digest: str
    last_event_id: int | None
