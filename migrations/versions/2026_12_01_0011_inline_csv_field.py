"""roadmap_csv_field inlined: an appended event's text costs the database half as much

Migration 0010's trigger writes each appended event's CSV line with roadmap_csv_field, once
per field. That function had a SET search_path clause, which keeps PostgreSQL from inlining a
SQL function: every field was a function call of its own, and writing the text cost more than
the rest of a transition's statements together (bench/RESULTS.md, issue 16). Without the
clause PostgreSQL inlines the function into the statement that calls it, but where an argument
is too costly to evaluate more than once (a subquery), and those calls no longer switch the
search_path. It needs no search_path of its own: its body names only built-in functions and
operators, which PostgreSQL finds in pg_catalog whatever the search_path, and the trigger
functions that call it keep theirs.

The same text comes out for the same value, so no text is rewritten, and nothing in the record
changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0010's function (a CSV field as Python's csv.writer writes it, QUOTE_MINIMAL),
# without its SET clause.
CSV_FIELD = """
CREATE OR REPLACE FUNCTION roadmap_csv_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(CASE WHEN value ~ '[",\r\n]'
                         THEN '"' || replace(value, '"', '""') || '"' ELSE value END, '')
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CSV_FIELD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER FUNCTION roadmap_csv_field(text) SET search_path FROM CURRENT")
