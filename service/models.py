"""Every ORM model, imported in one place so Alembic and create_app see the whole schema."""

from service.audit.models import Event
from service.auth.models import ApiKey
from service.db import Base
from service.idempotency.models import IdempotencyKey
from service.milestones.models import Milestone
from service.programs.models import Program
from service.roadmaps.models import ProgressReport, Roadmap, SeedLoad

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "IdempotencyKey",
    "Milestone",
    "Program",
    "ProgressReport",
    "Roadmap",
    "SeedLoad",
]
