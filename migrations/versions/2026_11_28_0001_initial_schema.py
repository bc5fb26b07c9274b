"""Initial schema: roadmaps, programmes and their append-only event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from service.types import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STATUS_NAMES = (
    "'draft', 'coordinated', 'ministerially_approved', 'supreme_council_approved', "
    "'in_implementation', 'delayed', 'completed', 'carried_over', 'withdrawn'"
)

# History is the record: the database itself refuses to change or remove an event.
PG_APPEND_ONLY = [
    """
    CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'events are append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
    END $$
    """,
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION events_refuse_change()",
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change()",
]
SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END",
    # SQLite has no TRUNCATE; with a trigger present, DELETE without WHERE deletes row by row.
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END",
]


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "roadmaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("title_ru", sa.String(length=500), nullable=True),
        sa.Column("period", sa.String(length=32), nullable=True),
        sa.Column("official_program_count", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("sources", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roadmaps")),
        sa.UniqueConstraint("code", name=op.f("uq_roadmaps_code")),
    )
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("roadmap_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("title_ru", sa.String(length=500), nullable=True),
        sa.Column("title_official", sa.Boolean(), nullable=False),
        sa.Column("sector", sa.String(length=100), nullable=True),
        sa.Column("lead_bodies", sa.String(length=1000), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("sources", JSONDocument, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_effective_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(f"status IN ({STATUS_NAMES})", name=op.f("ck_programs_status_known")),
        sa.ForeignKeyConstraint(
            ["roadmap_id"], ["roadmaps.id"], name=op.f("fk_programs_roadmap_id_roadmaps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
        sa.UniqueConstraint("code", name=op.f("uq_programs_code")),
    )
    op.create_index(op.f("ix_programs_roadmap_id"), "programs", ["roadmap_id"])
    op.create_index(op.f("ix_programs_sector"), "programs", ["sector"])
    op.create_index(op.f("ix_programs_status"), "programs", ["status"])

    txid_default = "(pg_current_xact_id()::text)::bigint" if _is_postgresql() else "0"
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default=sa.text(txid_default), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=True),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("sources", JSONDocument, nullable=False),
        sa.Column("changes", JSONDocument, nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_events_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("program_id", "seq", name="uq_events_program_seq"),
    )
    op.create_index("ix_events_feed", "events", ["txid", "id"])
    op.create_index("ix_events_kind", "events", ["kind"])
    for statement in PG_APPEND_ONLY if _is_postgresql() else SQLITE_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    if _is_postgresql():
        op.execute("DROP TRIGGER events_no_truncate ON events")
        op.execute("DROP TRIGGER events_append_only ON events")
        op.execute("DROP FUNCTION events_refuse_change()")
    else:
        op.execute("DROP TRIGGER events_no_delete")
        op.execute("DROP TRIGGER events_no_update")
    op.drop_table("events")
    op.drop_index(op.f("ix_programs_status"), table_name="programs")
    op.drop_index(op.f("ix_programs_sector"), table_name="programs")
    op.drop_index(op.f("ix_programs_roadmap_id"), table_name="programs")
    op.drop_table("programs")
    op.drop_table("roadmaps")
