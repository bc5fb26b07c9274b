"""Events as text, from PostgreSQL: feed pages and exports at the database's pace.

Building a model per event, then a dict, then JSON or a CSV row, costs the worker far more than
the database spends finding the event; a notebook pulling the whole history, or a consumer
catching up on the feed, then waits on Python. On PostgreSQL the worker only passes text on:
- each event's JSON text is written once, when the event is appended (models.events.EventText,
  kept by migration 0010's triggers), since events never change; a feed item or an NDJSON line
  is that text with its braces (and its cursor);
- so is its CSV line, quoted as csv.writer quotes;
- NDJSON exports go through COPY, so the bytes reach the worker as they will leave it.
The pages are the feed's own (audit.feed.feed_page_query: same order, horizon, filters and
cursors), each read in a statement of its own, so no transaction stays open while a client
reads slowly.

The text is the one the generic path writes (downloads.formats, audit.schemas.EventRead):
- an NDJSON line is byte for byte `json.dumps(event, ensure_ascii=False)`, keys in EventRead's
  order, `sources` and `changes` as the database keeps them (jsonb's text, which is what
  json.dumps makes of the values it reads back);
- a feed page item is the same object: the same JSON values, keys in the same order, written
  with json.dumps's spaces where pydantic writes none;
- a CSV line is what csv.writer writes for downloads.formats.csv_cell of each value: quoted
  only when it holds a comma, a quote, a CR or an LF, lists joined with " | ", `changes` as
  JSON with sorted keys (migration 0009's roadmap_sorted_json), and an LF at the end.
Migration 0010 holds the SQL that writes them.
tests/exports/test_rendered.py compares both paths event for event.

SQLite keeps the generic path: it is the small, single-machine database.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.feed import (
    NO_FILTERS,
    FeedFilters,
    attributions_recorded,
    decode_feed_cursor,
    feed_page_query,
    read_feed,
)
from service.audit.service import event_json
from service.filters import require_known
from service.models.decisions import DecisionAttribution
from service.models.events import Event, EventText
from service.models.programs import Program

Position = tuple[int, int]


class Form(StrEnum):
    """The forms of an export."""

    NDJSON = "ndjson"  # JSON as json.dumps writes it, with the cursor, and an LF
    CSV = "csv"  # downloads.formats.EVENT_COLUMNS, lines ending in LF


def supported(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# An event's text is written once, when it is appended (models.events.EventText, by migration
# 0010's trigger): `body` holds its JSON members, so a feed item and an NDJSON line are each a
# few concatenations, and `csv` its CSV line.
_FEED_ITEM = "'{' || event_texts.body || '}'"
_NDJSON_LINE = "'{' || event_texts.body || ', \"cursor\": \"' || event_texts.cursor || '\"}'"
# COPY's CSV options for NDJSON lines: a JSON text holds no control character unescaped, so
# with these for quote and delimiter COPY writes each line as it is, then an LF.
_AS_IS = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}


def _events(*columns: Any) -> Select[*tuple[Any, ...]]:
    return (
        select(*columns)
        .select_from(Event)
        .join(Program, Program.id == Event.program_id)
        .outerjoin(DecisionAttribution, DecisionAttribution.event_id == Event.id)
        .join(EventText, EventText.event_id == Event.id)
    )


async def read_export(
    session: AsyncSession,
    form: Form,
    *,
    after: Position,
    limit: int,
    until: Position | None = None,
    filters: FeedFilters = NO_FILTERS,
) -> tuple[bytes, Position]:
    """audit.feed.read_feed, with the page written out as NDJSON or CSV lines (UTF-8), and the
    position after it (`after` when the page is empty)."""
    if form is Form.CSV:
        # Read as rows: a CSV line may hold a quoted line break, which COPY would quote again.
        query = feed_page_query(
            _events(EventText.csv, Event.txid, Event.id),
            session, after=after, limit=limit, until=until, filters=filters,
        )  # fmt: skip
        rows = (await session.execute(query)).all()
        if not rows:
            await require_known(session, program=filters.program, roadmap=filters.roadmap)
            return b"", after
        return "".join(row[0] + "\n" for row in rows).encode(), (rows[-1][1], rows[-1][2])
    text = await _copy_ndjson(session, after=after, limit=limit, until=until, filters=filters)
    if not text:
        await require_known(session, program=filters.program, roadmap=filters.roadmap)
        return text, after
    last_line = text[text.rfind(b"\n", 0, -1) + 1 : -1]
    cursor = last_line.rpartition(b'"cursor": "')[2].partition(b'"')[0]  # the last member
    return text, decode_feed_cursor(cursor.decode())


async def _copy_ndjson(
    session: AsyncSession,
    *,
    after: Position,
    limit: int,
    until: Position | None,
    filters: FeedFilters,
) -> bytes:
    """NDJSON lines through COPY: the bytes reach the worker as they will leave it."""
    query = feed_page_query(
        _events(literal_column(_NDJSON_LINE)),
        session, after=after, limit=limit, until=until, filters=filters,
    )  # fmt: skip
    # COPY takes no parameters: the values are written into the statement by SQLAlchemy, as
    # literals (numbers, dates, and strings quoted with standard_conforming_strings on, which
    # db.create_engine sets for the session).
    statement = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    connection = await (await session.connection()).get_raw_connection()
    driver = connection.driver_connection
    assert driver is not None  # a connection checked out of the pool is open
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await driver.copy_from_query(statement, output=collect, **_AS_IS)
    return b"".join(chunks)


@dataclass(frozen=True)
class FeedText:
    """A GET /events page as text: its items (the text inside its JSON array), the position
    after them, and audit.feed.attributions_recorded as the page was read."""

    items: str
    position: Position
    attributions: int


async def feed_page_text(
    session: AsyncSession, *, after: Position, limit: int, filters: FeedFilters = NO_FILTERS
) -> FeedText:
    """A page of the feed as text: written by PostgreSQL, or from the events' models
    elsewhere. `position` is `after` when the page is empty."""
    if not supported(session):
        events, position = await read_feed(session, after=after, limit=limit, filters=filters)
        attributions = await attributions_recorded(session)
        return FeedText(",".join(event_json(event) for event in events), position, attributions)
    # The attribution count is read by the same statement, so in the same snapshot as the page
    # (over the whole table: not correlated with the page's outer join to it).
    attribution_count = (
        select(func.count()).select_from(DecisionAttribution).correlate(None).scalar_subquery()
    )
    query = feed_page_query(
        _events(literal_column(_FEED_ITEM), Event.txid, Event.id, attribution_count),
        session, after=after, limit=limit, filters=filters,
    )  # fmt: skip
    rows = (await session.execute(query)).all()
    if not rows:
        await require_known(session, program=filters.program, roadmap=filters.roadmap)
        return FeedText("", after, await attributions_recorded(session))
    _, txid, event_id, count = rows[-1]
    return FeedText(",".join([row[0] for row in rows]), (txid, event_id), count)
