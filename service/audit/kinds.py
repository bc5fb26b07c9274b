"""What an event records. Pure."""

from enum import StrEnum


class EventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # descriptive fields
    STATUS_CHANGED = "status_changed"
    # Voids the programme's latest status change and restores the status before it; the voided
    # event stays in the history (service.programs.corrections).
    CORRECTED = "corrected"
    MILESTONE_ADDED = "milestone_added"
    MILESTONE_UPDATED = "milestone_updated"


# The kinds that set a programme's status: its status on a day is the to_status of the newest
# of these (models.events.STATUS_KINDS_SQL names the same in the index).
STATUS_EVENT_KINDS = (EventKind.CREATED, EventKind.STATUS_CHANGED, EventKind.CORRECTED)
