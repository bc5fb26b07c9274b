from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from service.audit.kinds import EventKind
from service.schemas import Code, LongText, ReadModel, RequestModel, Text, Timestamp

TargetUrl = Annotated[
    Text,
    StringConstraints(min_length=1, max_length=2000),
    Field(
        description="Where to POST each event: https, at a public address (both checked at "
        "every delivery too), unless the server sets ROADMAP_WEBHOOK_ALLOW_PRIVATE=true.",
        examples=["https://newsroom.example/hooks/roadmap"],
    ),
]
Kinds = Annotated[
    list[EventKind] | None,
    Field(min_length=1, max_length=20, description="Only events of these kinds; null: all"),
]
Programs = Annotated[
    list[Code] | None,
    Field(min_length=1, max_length=500, description="Only these programmes' events; null: all"),
]
RoadmapCode = Annotated[
    Code | None, Field(description="Only events of this roadmap's programmes; null: all")
]
FeedCursor = Annotated[Text, StringConstraints(min_length=1, max_length=200)]


class WebhookState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # set inactive by an admin
    FAILING = "failing"  # paused by the dispatcher after failing too long


class WebhookCreate(RequestModel):
    url: TargetUrl
    kinds: Kinds = None
    programs: Programs = None
    roadmap: RoadmapCode = None
    description: LongText | None = None
    after: FeedCursor | None = Field(
        default=None,
        description="Deliver the events after this feed cursor (from GET /events), to replay "
        "history; by default delivery starts at the current end of the feed.",
    )


class WebhookUpdate(RequestModel):
    """Only the fields given change; `kinds`, `programs` or `roadmap` set to null drops that
    filter. `active: true` resumes a paused or failing subscription from where it stopped."""

    url: TargetUrl | None = None
    kinds: Kinds = None
    programs: Programs = None
    roadmap: RoadmapCode = None
    description: LongText | None = None
    active: bool | None = None


class WebhookRead(ReadModel):
    id: int
    url: str
    description: str | None
    kinds: list[EventKind] | None
    programs: list[str] | None
    roadmap: str | None
    active: bool
    state: WebhookState
    cursor: str = Field(description="The feed position delivered up to (a GET /events cursor)")
    failures: int = Field(description="Failed attempts in a row at the next event")
    failing_since: Timestamp | None
    next_attempt_at: Timestamp | None
    last_error: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks: whsec_ + base64), shown in this "
        "answer only; POST …/rotate-secret makes a new one."
    )


class WebhookList(ReadModel):
    items: list[WebhookRead]


class DeliveryRead(ReadModel):
    id: int
    event_id: int
    event_cursor: str
    message_id: str = Field(description="The webhook-id header sent")
    attempt: int
    attempted_at: Timestamp
    duration_ms: int
    status_code: int | None
    error: str | None
    delivered: bool


class DeliveryPage(ReadModel):
    items: list[DeliveryRead]
    next_cursor: str | None


class Redelivery(RequestModel):
    event: FeedCursor = Field(
        description="Deliver again this event (its `event_cursor` in the delivery log) and "
        "every matching event after it, in order."
    )


def state_of(active: bool, failing: bool) -> WebhookState:
    if active:
        return WebhookState.ACTIVE
    return WebhookState.FAILING if failing else WebhookState.PAUSED
