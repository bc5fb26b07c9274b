"""programs.status unindexed: a status change rewrites the programme's row in place

Every transition updates its programme's row: status, its date, version and updated_at. Since
status was indexed, PostgreSQL could not make that a heap-only (HOT) update: each one wrote a
new entry in each of the programmes' five indexes and left dead ones behind, and the indexes
grew with every write. Without the index, pgbench ran the service's transition about a quarter
faster (bench/RESULTS.md, issue 16).

No read wants the index. The programmes are a few dozen rows (28 in the seed), which a filter on
status reads whole faster than through an index. The other indexes (id, code, roadmap,
sector) stay: a status change writes none of their columns.

Nothing in the record changes: only an index goes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_programs_status"), table_name="programs")


def downgrade() -> None:
    op.create_index(op.f("ix_programs_status"), "programs", ["status"])
