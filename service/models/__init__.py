"""The schema: every table, one module per domain, in one package below every domain, so a
domain names another's table without importing that domain (no package-level cycle). Imported
here in one place so Alembic and create_app see the whole schema."""

from service.db import Base
from service.models.decisions import Decision, DecisionAttribution
from service.models.events import Event, EventText
from service.models.idempotency import IdempotencyKey
from service.models.keys import ApiKey
from service.models.milestones import Milestone
from service.models.programs import Program
from service.models.roadmaps import ProgressReport, Roadmap, SeedLoad
from service.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "Base",
    "Decision",
    "DecisionAttribution",
    "Event",
    "EventText",
    "IdempotencyKey",
    "Milestone",
    "Program",
    "ProgressReport",
    "Roadmap",
    "SeedLoad",
    "Webhook",
    "WebhookDelivery",
]
