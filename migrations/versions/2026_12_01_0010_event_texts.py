"""Each event's text (JSON, CSV), written once when the event is appended (PostgreSQL)

The feed and the event exports show an event as JSON or as a CSV line (service.audit.rendered).
Building that text in SQL for every read cost the database more than finding the event: twice
what psql's own COPY of the same columns costs. Events never change, so the text is written
once, when the event is appended, by a trigger, and reads pass it on.

- `event_texts`: per event, `body` (the members of its JSON object, as json.dumps writes them,
  keys in audit.schemas.EventRead's order), `cursor` (its feed cursor,
  pagination.encode_cursor) and `csv` (its line of /export/events.csv, without the LF).
  Created on both databases, filled on PostgreSQL only: SQLite builds the text from the
  events' models.
- `event_text_source`: the view that writes them, from events, their programme's code and a
  decision attributed afterwards.
- Triggers: an appended event gets its text; an event attributed to a decision afterwards
  (decision_attributions, append-only) gets its text rewritten, since it then shows the
  decision. Programme codes never change. Like the events, the texts refuse UPDATE, DELETE
  and TRUNCATE; only that trigger rewrites one. Every function runs with the search_path of
  the migration, whatever the caller's.
- The events already there get theirs now.

Nothing in the record changes: events and their chains are as they were. A change to what an
event shows (a new field of EventRead) needs a migration that rewrites the view and the texts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# to_json escapes every string as json.dumps(ensure_ascii=False) does; jsonb's own text is what
# json.dumps makes of the values read back; timestamps are UTC with microseconds and a Z. The
# driver (asyncpg) stores the first and the last day Python has as -infinity and infinity, and
# reads them back as those days: so they are written here.
# A CSV field as Python's csv.writer writes it (QUOTE_MINIMAL): quoted when it holds a comma, a
# quote, a CR or an LF; NULL as nothing.
CSV_FIELD = """
CREATE FUNCTION roadmap_csv_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
    SELECT coalesce(CASE WHEN value ~ '[",\r\n]'
                         THEN '"' || replace(value, '"', '""') || '"' ELSE value END, '')
$$
"""

SOURCE_VIEW = """
CREATE VIEW event_text_source AS
SELECT e.id AS event_id,
       '"id": ' || e.id
    || ', "program": ' || to_json(p.code)::text
    || ', "seq": ' || e.seq
    || ', "kind": ' || to_json(e.kind)::text
    || ', "from_status": ' || coalesce(to_json(e.from_status)::text, 'null')
    || ', "to_status": ' || coalesce(to_json(e.to_status)::text, 'null')
    || ', "effective_date": "' || shared.day || '"'
    || ', "recorded_at": "' || shared.recorded || '"'
    || ', "actor": ' || to_json(e.actor)::text
    || ', "on_behalf_of": ' || coalesce(to_json(e.on_behalf_of)::text, 'null')
    || ', "note": ' || coalesce(to_json(e.note)::text, 'null')
    || ', "source_url": ' || coalesce(to_json(e.source_url)::text, 'null')
    || ', "sources": ' || coalesce(e.sources::text, 'null')
    || ', "changes": ' || coalesce(e.changes::text, 'null')
    || ', "decision": ' || coalesce(to_json(shared.decision)::text, 'null')
    || ', "decision_attributed": ' || shared.attributed::text
    || ', "prev_hash": ' || to_json(e.prev_hash)::text
    || ', "hash": ' || to_json(e.hash)::text AS body,
       shared.cursor,
       -- downloads.formats.EVENT_COLUMNS as csv.writer writes downloads.formats.csv_cell's
       e.id || ',' || roadmap_csv_field(p.code) || ',' || e.seq
    || ',' || roadmap_csv_field(e.kind)
    || ',' || roadmap_csv_field(e.from_status) || ',' || roadmap_csv_field(e.to_status)
    || ',' || shared.day || ',' || shared.recorded
    || ',' || roadmap_csv_field(e.actor) || ',' || roadmap_csv_field(e.on_behalf_of)
    || ',' || roadmap_csv_field(e.note) || ',' || roadmap_csv_field(e.source_url)
    || ',' || roadmap_csv_field(array_to_string(
                  ARRAY(SELECT jsonb_array_elements_text(e.sources)), ' | '))
    || ',' || roadmap_csv_field(roadmap_sorted_json(e.changes))
    || ',' || roadmap_csv_field(shared.decision)
    || ',' || CASE WHEN shared.attributed THEN 'True' ELSE 'False' END
    || ',' || e.prev_hash || ',' || e.hash || ',' || shared.cursor AS csv
FROM events AS e
JOIN programs AS p ON p.id = e.program_id
LEFT JOIN decision_attributions AS a ON a.event_id = e.id
CROSS JOIN LATERAL (
    SELECT rtrim(translate(encode(('[' || e.txid || ',' || e.id || ']')::bytea, 'base64'),
                           '+/', '-_'), '=') AS cursor,
           CASE WHEN isfinite(e.effective_date) THEN to_char(e.effective_date, 'YYYY-MM-DD')
                WHEN e.effective_date < '2000-01-01' THEN '0001-01-01'
                ELSE '9999-12-31' END AS day,
           CASE WHEN isfinite(e.recorded_at)
                THEN to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                WHEN e.recorded_at < '2000-01-01' THEN '0001-01-01T00:00:00.000000Z'
                ELSE '9999-12-31T23:59:59.999999Z' END AS recorded,
           coalesce(e.decision, a.decision) AS decision,
           (e.decision IS NULL AND a.decision IS NOT NULL) AS attributed
) AS shared
"""

TRIGGERS = (
    """
CREATE FUNCTION roadmap_write_event_text() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO event_texts (event_id, body, cursor, csv)
    SELECT event_id, body, cursor, csv FROM event_text_source WHERE event_id = NEW.id;
    RETURN NULL;
END
$$""",
    """
CREATE TRIGGER events_write_text AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION roadmap_write_event_text()""",
    """
CREATE FUNCTION roadmap_rewrite_attributed_event_text() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE event_texts AS text SET body = source.body, csv = source.csv
      FROM event_text_source AS source
     WHERE source.event_id = NEW.event_id AND text.event_id = NEW.event_id;
    RETURN NULL;
END
$$""",
    """
CREATE TRIGGER decision_attributions_rewrite_text AFTER INSERT ON decision_attributions
    FOR EACH ROW EXECUTE FUNCTION roadmap_rewrite_attributed_event_text()""",
    # The texts are what the feed and the exports serve: like the events, nobody edits or
    # deletes them; only the attribution trigger above rewrites one (from inside a trigger).
    """
CREATE FUNCTION roadmap_event_texts_follow_events() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'event_texts follows events: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$""",
    """
CREATE TRIGGER event_texts_follow_events BEFORE UPDATE OR DELETE ON event_texts
    FOR EACH ROW EXECUTE FUNCTION roadmap_event_texts_follow_events()""",
    """
CREATE TRIGGER event_texts_not_truncated BEFORE TRUNCATE ON event_texts
    FOR EACH STATEMENT EXECUTE FUNCTION roadmap_event_texts_follow_events()""",
)  # one statement each: the driver prepares them


def upgrade() -> None:
    op.create_table(
        "event_texts",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_texts_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_texts")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CSV_FIELD)
        op.execute(SOURCE_VIEW)
        for statement in TRIGGERS:
            op.execute(statement)
        op.execute(
            "INSERT INTO event_texts (event_id, body, cursor, csv) "
            "SELECT event_id, body, cursor, csv FROM event_text_source"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER decision_attributions_rewrite_text ON decision_attributions")
        op.execute("DROP FUNCTION roadmap_rewrite_attributed_event_text()")
        op.execute("DROP TRIGGER events_write_text ON events")
        op.execute("DROP FUNCTION roadmap_write_event_text()")
        op.execute("DROP VIEW event_text_source")
        op.execute("DROP FUNCTION roadmap_csv_field(text)")
    op.drop_table("event_texts")  # and its own triggers
    if postgresql:
        op.execute("DROP FUNCTION roadmap_event_texts_follow_events()")
