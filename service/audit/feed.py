"""The change feed: every committed event exactly once, for a consumer that keeps its cursor.

Why not simply ``WHERE id > :last_id``? With concurrent writers, ids are handed out when a row
is inserted, not when its transaction commits. Writer A takes id 10, writer B takes id 11 and
commits first; a consumer polling now sees 11, stores it as its cursor, and never sees 10 when
A commits a moment later.

The feed is therefore ordered by (txid, id), where txid is the id of the transaction that wrote
the event (PostgreSQL's ``pg_current_xact_id()``, stored by the column default), and a poll only
returns events whose txid is below the horizon of the poll's own snapshot — the oldest
transaction of this database still running then: every transaction with a smaller id has
finished, committed or not, so no event can later appear *behind* a position the feed has
already handed out. The cursor is the (txid, id) of the last event returned. The price is
latency, not correctness: a long-open writing transaction in this database holds the feed back
until it ends.

On SQLite the database admits one writer at a time and an event's id is assigned inside that
write transaction, so ids are already in commit order; txid is 0 there and the filter is not
needed.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    func,
    literal,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import EventKind
from service.audit.service import EventRow, events_with_codes
from service.filters import require_known
from service.models.decisions import DecisionAttribution
from service.models.events import Event
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.pagination import decode_cursor, encode_cursor

START = (0, 0)
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def decode_feed_cursor(cursor: str | None) -> tuple[int, int]:
    if cursor is None:
        return START
    txid, event_id = decode_cursor(cursor, arity=2)
    return txid, event_id


def encode_feed_cursor(position: tuple[int, int]) -> str:
    return encode_cursor(*position)


# The feed horizon on PostgreSQL: the smallest transaction id still running in *this* database
# as of the statement's snapshot, or the snapshot's xmax when none is. Transactions of other
# databases on the same server are left out (they never write our events), so a long
# transaction elsewhere does not hold the feed back. A running xid whose database cannot be
# told (its session just ended, or its row is hidden from us) counts as ours: that can only
# delay an event, never skip one. pg_stat_activity shows 32-bit xids, the snapshot 64-bit ones.
_HORIZON: ColumnElement[int] = literal_column(
    """(SELECT least(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        (SELECT min(running::text::bigint)
           FROM pg_snapshot_xip(pg_current_snapshot()) AS running
          WHERE NOT EXISTS (
            SELECT 1 FROM pg_stat_activity AS other
             WHERE other.datname <> current_database()
               AND other.backend_xid IS NOT NULL
               AND other.backend_xid::text::bigint = running::text::bigint % 4294967296))))"""
)


def settled_filter(session: AsyncSession) -> ColumnElement[bool] | None:
    """Only events whose writing transaction, and every older one of this database, has
    finished."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return Event.txid < _HORIZON


@dataclass(frozen=True)
class FeedFilters:
    """What a reader of the feed may narrow it to. The filters only leave events out:
    positions, and so cursors, are the feed's, so a filtered reader resumes with `after` like
    any other. `as_of` keeps the events effective by the end of that day, `known_at` those
    recorded by that moment (UTC)."""

    program: str | None = None
    kind: EventKind | None = None
    roadmap: str | None = None
    as_of: date | None = None
    known_at: datetime | None = None


NO_FILTERS = FeedFilters()


def _position(position: tuple[int, int]) -> ColumnElement[tuple[int, int]]:
    # BIGINT both: transaction ids pass 2**31 in a busy database's lifetime.
    txid, event_id = position
    return tuple_(literal(txid, BigInteger), literal(event_id, BigInteger))


def feed_page_query(
    query: Q,
    session: AsyncSession,
    *,
    after: tuple[int, int],
    limit: int,
    until: tuple[int, int] | None = None,
    filters: FeedFilters = NO_FILTERS,
) -> Q:
    """`query` (a select from events joined to their programmes, as events_with_codes makes)
    narrowed to one page of the feed after `after`, and up to `until` if given."""
    # A row comparison, which both databases turn into one range scan of the (txid, id) index
    # (an OR of the two cases would be a filter over everything before the cursor).
    query = query.where(tuple_(Event.txid, Event.id) > _position(after))
    query = query.order_by(Event.txid, Event.id).limit(limit)
    settled = settled_filter(session)
    if settled is not None:
        query = query.where(settled)
    if until is not None:
        query = query.where(tuple_(Event.txid, Event.id) <= _position(until))
    if filters.program is not None:
        query = query.where(Program.code == filters.program)
    if filters.kind is not None:
        query = query.where(Event.kind == filters.kind)
    if filters.roadmap is not None:
        roadmap_id = select(Roadmap.id).where(Roadmap.code == filters.roadmap).scalar_subquery()
        query = query.where(Program.roadmap_id == roadmap_id)
    if filters.as_of is not None:
        query = query.where(Event.effective_date <= filters.as_of)
    if filters.known_at is not None:
        query = query.where(Event.recorded_at <= filters.known_at)
    return query


async def read_feed(
    session: AsyncSession,
    *,
    after: tuple[int, int],
    limit: int,
    until: tuple[int, int] | None = None,
    filters: FeedFilters = NO_FILTERS,
) -> tuple[list[EventRow], tuple[int, int]]:
    """One page of the feed after `after` (and up to `until`, if given), and the cursor that
    follows it."""
    query = feed_page_query(
        events_with_codes(), session, after=after, limit=limit, until=until, filters=filters
    )
    rows = [EventRow(*row) for row in await session.execute(query)]
    if not rows:
        await require_known(session, program=filters.program, roadmap=filters.roadmap)
        return rows, after
    last = rows[-1].event
    return rows, (last.txid, last.id)


async def attributions_recorded(session: AsyncSession) -> int:
    """How many events were attributed to a decision afterwards (models.decisions): those
    events read differently from then on while the feed stands still, so the ETags of feed
    pages and exports name this count beside the feed's position."""
    count = await session.scalar(select(func.count()).select_from(DecisionAttribution))
    return int(count or 0)


async def feed_end(session: AsyncSession) -> tuple[int, int]:
    """The position of the newest settled event: a cursor that skips everything so far."""
    query = select(Event.txid, Event.id).order_by(Event.txid.desc(), Event.id.desc()).limit(1)
    settled = settled_filter(session)
    if settled is not None:
        query = query.where(settled)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else START
