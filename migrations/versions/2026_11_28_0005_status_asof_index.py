"""A partial index for as-of reads and timelines: status events by programme and date.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_KINDS = sa.text("kind IN ('created', 'status_changed')")


def upgrade() -> None:
    op.create_index(
        "ix_events_status_asof",
        "events",
        ["program_id", "effective_date", "seq"],
        postgresql_where=STATUS_KINDS,
        sqlite_where=STATUS_KINDS,
    )


def downgrade() -> None:
    op.drop_index("ix_events_status_asof", table_name="events")
