"""A function writing JSON with sorted keys, for the events CSV export on PostgreSQL

`roadmap_sorted_json(jsonb)` writes a value as Python's json.dumps(sort_keys=True,
ensure_ascii=False) does, at any depth: the `changes` column of /export/events.csv, in each
event's CSV line (written once per event by migration 0010). It is STRICT, so the events
without changes, most of them, cost no call at all. SQLite has no such function and needs none.

Nothing in the record changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keys in code point order (COLLATE "C" compares UTF-8 bytes, which keeps that order), ", "
# between members and ": " after keys, as json.dumps writes them.
SORTED_JSON = """
CREATE FUNCTION roadmap_sorted_json(value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path FROM CURRENT AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'object' THEN
        RETURN '{' || coalesce((
            SELECT string_agg(
                to_json(member.key)::text || ': ' || roadmap_sorted_json(member.value),
                ', ' ORDER BY member.key COLLATE "C")
            FROM jsonb_each(value) AS member), '') || '}';
    WHEN 'array' THEN
        RETURN '[' || coalesce((
            SELECT string_agg(roadmap_sorted_json(element.value), ', ' ORDER BY element.position)
            FROM jsonb_array_elements(value) WITH ORDINALITY AS element(value, position)),
            '') || ']';
    ELSE
        RETURN value::text;
    END CASE;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SORTED_JSON)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION roadmap_sorted_json(jsonb)")
