"""What a milestone's dates, and its programme's status, say about it on a given day. Pure."""

from datetime import date
from enum import StrEnum

from service.rules.workflow import STATES

# A programme in one of these states will not act any more: what it left undone was missed.
CLOSED_STATUSES = tuple(state.name.value for state in STATES if state.terminal)


class MilestoneState(StrEnum):
    PLANNED = "planned"
    OVERDUE = "overdue"
    DONE = "done"
    MISSED = "missed"


def milestone_state(
    due_date: date | None, done_date: date | None, day: date, *, closed: bool
) -> MilestoneState:
    """The state at the end of `day`: done once its done date has come; missed when its
    programme had closed (completed, carried over, withdrawn) without it; overdue when its due
    date had passed without it; planned otherwise, including a milestone with no due date.

    service.programs.progress states the same rule in SQL; tests check that the two agree."""
    if done_date is not None and done_date <= day:
        return MilestoneState.DONE
    if closed:
        return MilestoneState.MISSED
    if due_date is not None and due_date < day:
        return MilestoneState.OVERDUE
    return MilestoneState.PLANNED
