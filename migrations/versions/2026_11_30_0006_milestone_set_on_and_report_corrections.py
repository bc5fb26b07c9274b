"""A milestone's `set_on` (the date of the act that set it), and corrections of progress reports

`set_on` is filled from each milestone's `milestone_added` event, the only date the history has
for it; where the bundled data knows better, the service appends a correcting event on start
(service.seed.loader), so the history itself is never edited. A progress report is never edited
either: a corrected report is a new row that names the one it corrects.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("milestones") as batch_op:
        batch_op.add_column(sa.Column("set_on", sa.Date(), nullable=True))
    with op.batch_alter_table("progress_reports") as batch_op:
        batch_op.add_column(sa.Column("corrects_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_progress_reports_corrects_id_progress_reports",
            "progress_reports",
            ["corrects_id"],
            ["id"],
        )
        # A report is corrected at most once; a correction of a correction corrects that one.
        batch_op.create_unique_constraint("uq_progress_reports_corrects_id", ["corrects_id"])
    connection = op.get_bind()
    added = connection.execute(
        sa.text("SELECT changes, effective_date FROM events WHERE kind = 'milestone_added'")
    )
    set_on = sa.text("UPDATE milestones SET set_on = :set_on WHERE id = :id")
    for changes, effective_date in added:
        # JSON on SQLite comes back as text, JSONB on PostgreSQL as a dict.
        document = json.loads(changes) if isinstance(changes, str) else changes
        connection.execute(set_on, {"set_on": effective_date, "id": document["milestone_id"]})
    with op.batch_alter_table("milestones") as batch_op:
        batch_op.alter_column("set_on", existing_type=sa.Date(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("progress_reports") as batch_op:
        batch_op.drop_constraint("uq_progress_reports_corrects_id", type_="unique")
        batch_op.drop_constraint(
            "fk_progress_reports_corrects_id_progress_reports", type_="foreignkey"
        )
        batch_op.drop_column("corrects_id")
    with op.batch_alter_table("milestones") as batch_op:
        batch_op.drop_column("set_on")
