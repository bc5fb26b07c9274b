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
from typing import Any

from sqlalchemy import Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.feed import (
    NO_FILTERS,
    FeedFilters,
    decode_feed_cursor,
    feed_page_query,
    read_feed,
)
from service.audit.service import event_json
from service.filters import require_known
from service.models.decisions import DecisionAttribution
from service.models.events import Event
from service.models.programs import Program

Position = tuple[int, int]


class Form(StrEnum):
    FEED_ITEM = "feed_item"  # compact JSON, without the cursor (the page carries it)
    NDJSON = "ndjson"  # JSON as json.dumps writes it, with the cursor, and a newline
    CSV = "csv"  # downloads.formats.EVENT_COLUMNS, lines ending in LF


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
    # Hex digits, written by audit.chain: nothing to escape.
    ("prev_hash", "'\"' || events.prev_hash || '\"'"),
    ("hash", "'\"' || events.hash || '\"'"),
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


def _text(expression: str) -> str:
    """A text value for COPY's CSV, which quotes as csv.writer does, but writes an empty string
    as "" where csv.writer writes nothing: so an empty string goes as NULL."""
    return f"nullif({expression}, '')"


# downloads.formats.EVENT_COLUMNS, in order, as downloads.formats.csv_cell makes them, for
# COPY … TO STDOUT (FORMAT csv) to quote and lay out.
_CSV_COLUMNS: tuple[str, ...] = (
    "events.id",
    _text("programs.code"),
    "events.seq",
    _text("events.kind"),
    "events.from_status",
    "events.to_status",
    "to_char(events.effective_date, 'YYYY-MM-DD')",
    _RECORDED_AT,
    _text("events.actor"),
    _text("events.on_behalf_of"),
    _text("events.note"),
    _text("events.source_url"),
    _text("array_to_string(ARRAY(SELECT jsonb_array_elements_text(events.sources)), ' | ')"),
    _sorted_json("events.changes", 3),
    _text(_DECISION),
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
}


def _events(*columns: Any) -> Select[*tuple[Any, ...]]:
    return (
        select(*columns)
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
) -> tuple[str, Position]:
    """audit.feed.read_feed, with the page written out in `form` (feed items joined by commas,
    NDJSON and CSV lines one after the other), and the position after it (`after` when the
    page is empty)."""
    if form is Form.CSV:
        text = await _copy_csv(session, after=after, limit=limit, until=until, filters=filters)
        last_line = text[text.rfind("\n", 0, -1) + 1 :]
        position = decode_feed_cursor(last_line.rstrip("\n").rpartition(",")[2]) if text else after
    else:
        query = feed_page_query(
            _events(literal_column(_TEXT[form]), Event.txid, Event.id),
            session, after=after, limit=limit, until=until, filters=filters,
        )  # fmt: skip
        rows = (await session.execute(query)).all()
        text = ("," if form is Form.FEED_ITEM else "").join(row[0] for row in rows)
        position = (rows[-1][1], rows[-1][2]) if rows else after
    if not text:
        await require_known(session, program=filters.program, roadmap=filters.roadmap)
    return text, position


async def _copy_csv(
    session: AsyncSession,
    *,
    after: Position,
    limit: int,
    until: Position | None,
    filters: FeedFilters,
) -> str:
    """One page of CSV lines, laid out by COPY: PostgreSQL quotes, as csv.writer does, at the
    speed of its own COPY. The statement goes through the driver, which COPY needs."""
    query = feed_page_query(
        _events(*(literal_column(column) for column in _CSV_COLUMNS)),
        session, after=after, limit=limit, until=until, filters=filters,
    )  # fmt: skip
    compiled = query.compile(dialect=session.get_bind().dialect)
    arguments = [compiled.params[name] for name in compiled.positiontup or ()]
    connection = await (await session.connection()).get_raw_connection()
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    driver = connection.driver_connection
    assert driver is not None  # a connection checked out of the pool is open
    await driver.copy_from_query(str(compiled), *arguments, output=collect, format="csv")
    return b"".join(chunks).decode()


async def feed_page_items(
    session: AsyncSession, *, after: Position, limit: int, filters: FeedFilters = NO_FILTERS
) -> tuple[str, Position]:
    """The items of a GET /events page as the text inside its JSON array, and the position
    after them: written by PostgreSQL, or from the events' models elsewhere."""
    if supported(session):
        return await read_rendered(
            session, Form.FEED_ITEM, after=after, limit=limit, filters=filters
        )
    rows, position = await read_feed(session, after=after, limit=limit, filters=filters)
    return ",".join(event_json(row) for row in rows), position
