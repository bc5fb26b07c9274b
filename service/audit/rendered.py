"""Events rendered as text by PostgreSQL: feed pages and exports at the database's pace.

Building a model per event, then a dict, then JSON or a CSV row, costs the worker far more than
the database spends finding the event; a notebook pulling the whole history, or a consumer
catching up on the feed, then waits on Python. On PostgreSQL the statement that reads a page
returns each event already written out, as a JSON object or a CSV line, and the worker only
joins them. The pages are the feed's own (audit.feed.feed_page_query: same order, horizon,
filters and cursors), each read in a statement of its own, so no transaction stays open while
a client reads slowly.

The text is the one the generic path writes (downloads.formats, audit.schemas.EventRead):
- an NDJSON line is byte for byte `json.dumps(event, ensure_ascii=False)`, keys in EventRead's
  order, `sources` and `changes` as the database keeps them (jsonb's text, which is what
  json.dumps makes of the values it reads back);
- a feed page item is the same object written compactly, as pydantic writes it, except that
  inside `sources` and `changes` the separators keep jsonb's spaces: the same JSON values;
- a CSV line is what csv.writer writes for downloads.formats.csv_cell of each value: quoted
  only when it holds a comma, a quote or a line break, lists joined with " | ", `changes` as
  JSON with sorted keys (objects down to three levels deep; the service writes two), CRLF.
tests/exports/test_rendered.py compares both paths event for event.

SQLite keeps the generic path: it is the small, single-machine database.
"""

from enum import StrEnum

from sqlalchemy import ColumnElement, Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.feed import NO_FILTERS, FeedFilters, feed_page_query, read_feed
from service.audit.service import event_json
from service.filters import require_known
from service.models.decisions import DecisionAttribution
from service.models.events import Event
from service.models.programs import Program

Position = tuple[int, int]


class Form(StrEnum):
    FEED_ITEM = "feed_item"  # compact JSON, without the cursor (the page carries it)
    NDJSON = "ndjson"  # JSON as json.dumps writes it, with the cursor, and a newline
    CSV = "csv"  # downloads.router.EVENT_COLUMNS, and CRLF


def supported(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _json(expression: str) -> str:
    return f"coalesce(to_json({expression})::text, 'null')"


_DECISION = "coalesce(events.decision, decision_attributions.decision)"
_ATTRIBUTED = "(events.decision IS NULL AND decision_attributions.decision IS NOT NULL)"
_RECORDED_AT = """to_char(events.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# pagination.encode_cursor: URL-safe base64 of "[txid,id]", unpadded (short enough that
# PostgreSQL's base64 never breaks the line).
_CURSOR = (
    "rtrim(translate(encode(convert_to('[' || events.txid || ',' || events.id || ']', 'UTF8'),"
    " 'base64'), '+/', '-_'), '=')"
)

# EventRead's fields, in its order, as JSON text.
_JSON_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "events.id::text"),
    ("program", "to_json(programs.code)::text"),
    ("seq", "events.seq::text"),
    ("kind", "to_json(events.kind)::text"),
    ("from_status", _json("events.from_status")),
    ("to_status", _json("events.to_status")),
    ("effective_date", "to_json(events.effective_date)::text"),
    ("recorded_at", f"'\"' || {_RECORDED_AT} || '\"'"),
    ("actor", "to_json(events.actor)::text"),
    ("on_behalf_of", _json("events.on_behalf_of")),
    ("note", _json("events.note")),
    ("source_url", _json("events.source_url")),
    ("sources", "coalesce(events.sources::text, 'null')"),
    ("changes", "coalesce(events.changes::text, 'null')"),
    ("decision", _json(_DECISION)),
    ("decision_attributed", f"{_ATTRIBUTED}::text"),
    ("prev_hash", "to_json(events.prev_hash)::text"),
    ("hash", "to_json(events.hash)::text"),
)


def _json_object(fields: tuple[tuple[str, str], ...], *, item: str, key: str) -> str:
    """SQL writing a JSON object of `fields` (name, SQL giving its JSON text), with these
    separators between members and after keys."""
    pieces = []
    for index, (name, value) in enumerate(fields):
        before = "{" if index == 0 else item
        pieces.append(f"'{before}\"{name}\"{key}' || {value}")
    return "(" + " || ".join(pieces) + " || '}')"


def _csv(expression: str) -> str:
    """A text value as csv.writer writes it (QUOTE_MINIMAL); NULL as nothing."""
    return (
        f"coalesce(CASE WHEN {expression} ~ '[\",\\r\\n]' "
        f"THEN '\"' || replace({expression}, '\"', '\"\"') || '\"' ELSE {expression} END, '')"
    )


def _sorted_json(expression: str, depth: int) -> str:
    """A jsonb value as json.dumps(sort_keys=True) writes it, for objects `depth` levels deep."""
    if depth == 0:
        return f"{expression}::text"
    alias = f"member{depth}"
    # Built from this module's constants only: no value from a request reaches this text.
    member = f"to_json({alias}.key)::text || ': ' || {_sorted_json(f'{alias}.value', depth - 1)}"
    ordered = f"string_agg({member}, ', ' ORDER BY {alias}.key COLLATE \"C\")"
    members = f"SELECT '{{' || {ordered} || '}}' FROM jsonb_each({expression}) AS {alias}"  # noqa: S608
    return (
        f"CASE WHEN jsonb_typeof({expression}) = 'object' "
        f"THEN coalesce(({members}), '{{}}') ELSE {expression}::text END"
    )


# downloads.router.EVENT_COLUMNS, in order, as downloads.formats.csv_cell writes them.
_CSV_COLUMNS: tuple[str, ...] = (
    "events.id::text",
    _csv("programs.code"),
    "events.seq::text",
    _csv("events.kind"),
    "coalesce(events.from_status, '')",
    "coalesce(events.to_status, '')",
    "to_char(events.effective_date, 'YYYY-MM-DD')",
    _RECORDED_AT,
    _csv("events.actor"),
    _csv("events.on_behalf_of"),
    _csv("events.note"),
    _csv("events.source_url"),
    _csv("array_to_string(ARRAY(SELECT jsonb_array_elements_text(events.sources)), ' | ')"),
    _csv(f"({_sorted_json('events.changes', 3)})"),
    _csv(_DECISION),
    f"CASE WHEN {_ATTRIBUTED} THEN 'True' ELSE 'False' END",
    "events.prev_hash",
    "events.hash",
    _CURSOR,
)

_TEXT: dict[Form, str] = {
    Form.FEED_ITEM: _json_object(_JSON_FIELDS, item=",", key=":"),
    Form.NDJSON: _json_object(
        (*_JSON_FIELDS, ("cursor", f"'\"' || {_CURSOR} || '\"'")), item=", ", key=": "
    )
    + " || E'\\n'",
    Form.CSV: " || ',' || ".join(_CSV_COLUMNS) + " || E'\\r\\n'",
}


def _select(form: Form) -> Select[str, int, int]:
    text: ColumnElement[str] = literal_column(_TEXT[form])
    return (
        select(text, Event.txid, Event.id)
        .select_from(Event)
        .join(Program, Program.id == Event.program_id)
        .outerjoin(DecisionAttribution, DecisionAttribution.event_id == Event.id)
    )


async def read_rendered(
    session: AsyncSession,
    form: Form,
    *,
    after: Position,
    limit: int,
    until: Position | None = None,
    filters: FeedFilters = NO_FILTERS,
) -> tuple[list[str], Position]:
    """audit.feed.read_feed, with each event as text in `form`: the page, and the position
    after it (`after` when it is empty)."""
    query = feed_page_query(
        _select(form), session, after=after, limit=limit, until=until, filters=filters
    )
    rows = (await session.execute(query)).all()
    if not rows:
        await require_known(session, program=filters.program, roadmap=filters.roadmap)
        return [], after
    _, txid, event_id = rows[-1]
    return [row[0] for row in rows], (txid, event_id)


async def feed_page_items(
    session: AsyncSession, *, after: Position, limit: int, filters: FeedFilters = NO_FILTERS
) -> tuple[str, Position]:
    """The items of a GET /events page as the text inside its JSON array, and the position
    after them: written by PostgreSQL, or from the events' models elsewhere."""
    if supported(session):
        items, position = await read_rendered(
            session, Form.FEED_ITEM, after=after, limit=limit, filters=filters
        )
        return ",".join(items), position
    rows, position = await read_feed(session, after=after, limit=limit, filters=filters)
    return ",".join(event_json(row) for row in rows), position
