"""Decisions (one act that moves many programmes), and corrections of status changes

- `decisions`: the acts; `events.decision` names the act that wrote an event (its hash covers
  it when set, so chains recorded before stay as they are and still verify).
- `decision_attributions`: an event recorded before decisions existed, attributed afterwards to
  its act by an appended row, never by editing the event (the seed does this on start).
- Both tables are append-only, like events.
- `corrected` events set a status too, so the as-of index covers them, and a programme's
  corrections are found by an index of their own (service.programs.asof says why).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
APPEND_ONLY_TABLES = ("decisions", "decision_attributions")
OLD_STATUS_KINDS = "kind IN ('created', 'status_changed')"
STATUS_KINDS = "kind IN ('created', 'status_changed', 'corrected')"
CORRECTED = "kind = 'corrected'"


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _refuse_changes_to(table: str) -> None:
    if _is_postgresql():
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION append_only_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION append_only_refuse_change()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("title_ru", sa.String(length=500), nullable=True),
        sa.Column("body", sa.String(length=200), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("sources", JSONDocument, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("code", name=op.f("uq_decisions_code")),
    )
    op.create_index("ix_decisions_date", "decisions", ["date", "id"])
    op.create_index(op.f("ix_decisions_body"), "decisions", ["body"])
    op.create_table(
        "decision_attributions",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("decision", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_decision_attributions_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["decision"],
            ["decisions.code"],
            name=op.f("fk_decision_attributions_decision_decisions"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_decision_attributions")),
    )
    op.create_index(
        op.f("ix_decision_attributions_decision"), "decision_attributions", ["decision"]
    )

    if _is_postgresql():
        op.add_column("events", sa.Column("decision", sa.String(length=64), nullable=True))
        op.create_foreign_key(
            op.f("fk_events_decision_decisions"), "events", "decisions", ["decision"], ["code"]
        )
        op.execute(
            """
            CREATE FUNCTION append_only_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation';
            END $$
            """
        )
    else:
        # Not a batch rebuild: that would copy the events into a new table and lose their
        # triggers. SQLite adds a NULL-default column with a foreign key in place.
        op.execute(
            "ALTER TABLE events ADD COLUMN decision VARCHAR(64) "
            "CONSTRAINT fk_events_decision_decisions REFERENCES decisions (code)"
        )
    op.create_index("ix_events_decision", "events", ["decision"])
    for table in APPEND_ONLY_TABLES:
        _refuse_changes_to(table)

    op.drop_index("ix_events_status_asof", table_name="events")
    op.create_index(
        "ix_events_status_asof",
        "events",
        ["program_id", "effective_date", "seq"],
        postgresql_where=sa.text(STATUS_KINDS),
        sqlite_where=sa.text(STATUS_KINDS),
    )
    op.create_index(
        "ix_events_corrections",
        "events",
        ["program_id"],
        postgresql_where=sa.text(CORRECTED),
        sqlite_where=sa.text(CORRECTED),
    )


def downgrade() -> None:
    # History is append-only: a release before this one could not read decisions' events (their
    # hashes cover `decision`) or corrections, so it would report them as tampered with, or
    # show voided changes. Refuse rather than lose them.
    written = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM events WHERE decision IS NOT NULL OR kind = 'corrected'")
    )
    if written:
        raise RuntimeError(
            f"cannot downgrade below 0007: {written} events were written by decisions or are "
            "corrections, which earlier releases cannot verify or read"
        )
    # The seeded decisions go with their tables; upgrading again attributes them again.
    op.execute("DELETE FROM seed_loads WHERE part = 'decisions'")
    op.drop_index("ix_events_corrections", table_name="events")
    op.drop_index("ix_events_status_asof", table_name="events")
    op.create_index(
        "ix_events_status_asof",
        "events",
        ["program_id", "effective_date", "seq"],
        postgresql_where=sa.text(OLD_STATUS_KINDS),
        sqlite_where=sa.text(OLD_STATUS_KINDS),
    )
    op.drop_index("ix_events_decision", table_name="events")
    op.drop_table("decision_attributions")  # it refers to events, rebuilt below on SQLite
    if _is_postgresql():
        op.drop_constraint(op.f("fk_events_decision_decisions"), "events", type_="foreignkey")
        op.drop_column("events", "decision")
    else:
        # SQLite cannot drop a column with a foreign key in place; the batch rebuild copies the
        # table, so its append-only triggers are put back after (as in migration 0001).
        op.execute("DROP TRIGGER events_no_update")
        op.execute("DROP TRIGGER events_no_delete")
        with op.batch_alter_table("events") as batch_op:
            batch_op.drop_column("decision")
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_no_{operation.lower()} BEFORE {operation} ON events "
                f"BEGIN SELECT RAISE(ABORT, 'events are append-only: {operation} refused'); END"
            )
    op.drop_table("decisions")
    if _is_postgresql():
        op.execute("DROP FUNCTION append_only_refuse_change()")
