"""What an event records. Pure."""

from enum import StrEnum


class EventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # descriptive fields
    STATUS_CHANGED = "status_changed"
    MILESTONE_ADDED = "milestone_added"
    MILESTONE_UPDATED = "milestone_updated"
