"""What a milestone's dates say about it. Pure."""

from datetime import date
from enum import StrEnum


class MilestoneState(StrEnum):
    PLANNED = "planned"
    OVERDUE = "overdue"
    DONE = "done"


def milestone_state(due_date: date | None, done_date: date | None, today: date) -> MilestoneState:
    """Done when it has a done date; overdue when its due date has passed (UTC today) without
    one; planned otherwise — including a milestone with no due date at all."""
    if done_date is not None:
        return MilestoneState.DONE
    if due_date is not None and due_date < today:
        return MilestoneState.OVERDUE
    return MilestoneState.PLANNED
