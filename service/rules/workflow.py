"""The lifecycle of a union programme, as data.

This module is pure (no FastAPI, no SQLAlchemy): the API, the seed loader and the tests all ask
the same table, so a rule changes in one place only.
"""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Status(StrEnum):
    DRAFT = "draft"
    COORDINATED = "coordinated"
    MINISTERIALLY_APPROVED = "ministerially_approved"
    SUPREME_COUNCIL_APPROVED = "supreme_council_approved"
    IN_IMPLEMENTATION = "in_implementation"
    DELAYED = "delayed"
    COMPLETED = "completed"
    CARRIED_OVER = "carried_over"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class State:
    name: Status
    label: str
    initial: bool = False
    terminal: bool = False


@dataclass(frozen=True)
class Transition:
    name: str
    source: Status
    target: Status


INITIAL_STATUS = Status.DRAFT

STATES: tuple[State, ...] = (
    State(Status.DRAFT, "Draft", initial=True),
    State(Status.COORDINATED, "Coordinated by the presidents"),
    State(Status.MINISTERIALLY_APPROVED, "Approved by the Council of Ministers"),
    State(Status.SUPREME_COUNCIL_APPROVED, "Approved by the Supreme State Council"),
    State(Status.IN_IMPLEMENTATION, "In implementation"),
    State(Status.DELAYED, "Delayed"),
    State(Status.COMPLETED, "Completed", terminal=True),
    State(Status.CARRIED_OVER, "Carried over", terminal=True),
    State(Status.WITHDRAWN, "Withdrawn", terminal=True),
)

_STATE_BY_STATUS = {state.name: state for state in STATES}

_NAMED_TRANSITIONS: tuple[Transition, ...] = (
    Transition("coordinate", Status.DRAFT, Status.COORDINATED),
    Transition("approve_ministerially", Status.COORDINATED, Status.MINISTERIALLY_APPROVED),
    Transition(
        "approve_supreme_council", Status.MINISTERIALLY_APPROVED, Status.SUPREME_COUNCIL_APPROVED
    ),
    Transition("start_implementation", Status.SUPREME_COUNCIL_APPROVED, Status.IN_IMPLEMENTATION),
    Transition("complete", Status.IN_IMPLEMENTATION, Status.COMPLETED),
    Transition("delay", Status.IN_IMPLEMENTATION, Status.DELAYED),
    Transition("resume", Status.DELAYED, Status.IN_IMPLEMENTATION),
    Transition("complete_after_delay", Status.DELAYED, Status.COMPLETED),
    Transition("carry_over", Status.IN_IMPLEMENTATION, Status.CARRIED_OVER),
    Transition("carry_over_after_delay", Status.DELAYED, Status.CARRIED_OVER),
    Transition("return_for_revision", Status.COORDINATED, Status.DRAFT),
    Transition("return_for_revision_after_approval", Status.MINISTERIALLY_APPROVED, Status.DRAFT),
)

TRANSITIONS: tuple[Transition, ...] = _NAMED_TRANSITIONS + tuple(
    Transition("withdraw", state.name, Status.WITHDRAWN) for state in STATES if not state.terminal
)

ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    state.name: frozenset(t.target for t in TRANSITIONS if t.source == state.name)
    for state in STATES
}


def label_of(status: Status | str) -> str:
    return _STATE_BY_STATUS[Status(status)].label


def allowed_targets(status: Status | str) -> list[Status]:
    """The statuses reachable from `status` in one step, in the table's order of states."""
    reachable = ALLOWED_TRANSITIONS[Status(status)]
    return [state.name for state in STATES if state.name in reachable]


def is_allowed(source: Status | str, target: Status | str) -> bool:
    return Status(target) in ALLOWED_TRANSITIONS[Status(source)]


class Refused(StrEnum):
    STEP = "step"  # the workflow has no such step from the current status
    DATE = "date"  # dated before the current status


@dataclass(frozen=True)
class Refusal:
    """Why a programme cannot make a status change, and where it may go instead."""

    refused: Refused
    reason: str
    allowed_targets: list[Status]


def refusal_of(
    status: Status | str, since: date, target: Status, effective_date: date
) -> Refusal | None:
    """Whether a programme in `status` since `since` may move to `target` effective on
    `effective_date` (a date in the future is the caller's to refuse): None when it may."""
    if not is_allowed(status, target):
        allowed = allowed_targets(status)
        named = ", ".join(allowed) if allowed else "none (the status is terminal)"
        return Refusal(
            Refused.STEP,
            f"A programme in status {Status(status).value!r} cannot move to {target.value!r}; "
            f"allowed: {named}.",
            allowed,
        )
    if effective_date < since:
        return Refusal(
            Refused.DATE,
            f"effective_date {effective_date} is earlier than the current status's "
            f"effective date {since}.",
            allowed_targets(status),
        )
    return None


def workflow_document() -> dict[str, list[dict[str, object]]]:
    """The table as published at GET /api/v1/workflow."""
    return {
        "states": [
            {
                "name": state.name.value,
                "label": state.label,
                "initial": state.initial,
                "terminal": state.terminal,
            }
            for state in STATES
        ],
        "transitions": [
            {"name": t.name, "from": t.source.value, "to": t.target.value} for t in TRANSITIONS
        ],
    }
