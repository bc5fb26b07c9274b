"""One reader of the feed per worker, shared by every live stream the worker serves.

A stream used to poll the feed on its own, so the database answered one query per open stream
every POLL_SECONDS: a page with two thousand readers cost thousands of statements a second.
Now one follower per worker polls (only while some stream is open) and hands each event, with
its JSON made once, to every stream's queue; the database's load grows with the number of
workers, not of readers.

Correctness is the feed's, unchanged: the follower reads the gap-free feed (audit.feed) in
order, so each stream sees committed events in feed order with no gap, whatever the number of
workers and replicas. A stream joins at a known position (the follower's head): what came
before it is read from the database by the stream itself (stream.py); everything after it
arrives through the queue. Joining and fanning out happen without an await between reading
the head and adding the queue, so no event falls between the two.

A stream that falls more than `buffer_events` (ROADMAP_STREAM_BUFFER_EVENTS) behind is dropped
from the fan-out rather than holding memory or the follower back: it sends what it has, then
ends, and the client resumes with Last-Event-ID from where it stopped.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.feed import encode_feed_cursor, feed_end, read_feed
from service.audit.service import EventRow, event_json
from service.db import page_session

log = logging.getLogger("roadmap.stream")

POLL_SECONDS = 0.3
PAGE = 200
QUEUE_EVENTS = 1000  # the default of ROADMAP_STREAM_BUFFER_EVENTS

Position = tuple[int, int]


@dataclass(frozen=True)
class FeedMessage:
    position: Position
    id: str  # the SSE id: the event's feed cursor
    data: str  # the event as JSON, as GET /events shows it


def message_of(row: EventRow) -> FeedMessage:
    position = (row.event.txid, row.event.id)
    return FeedMessage(position, encode_feed_cursor(position), event_json(row))


@dataclass(eq=False)
class Listener:
    queue: asyncio.Queue[FeedMessage]
    # Set when the queue overflowed: the listener gets nothing more and its stream ends once
    # it has sent what is queued.
    dropped: bool = False


class FeedFollower:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, buffer_events: int = QUEUE_EVENTS
    ) -> None:
        self._sessions = sessions
        self._buffer_events = buffer_events
        # A page never holds more than a queue does: a burst of commits is then fanned out a
        # page at a time, with the streams sending between two reads, so that only a stream
        # that really falls behind is cut off, not every stream of the worker at once.
        self._page = min(PAGE, buffer_events)
        self._listeners: set[Listener] = set()
        self._head: Position | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def prime(self) -> None:
        """Know the head, reading the feed's end if nobody follows it yet: a stream's route
        calls it first, so that a database it cannot read is a 503 before the stream's 200."""
        async with self._starting:
            await self._read_head()

    async def _read_head(self) -> Position:
        if self._head is None:
            async with page_session(self._sessions) as session:
                self._head = await feed_end(session)
        return self._head

    async def join(self) -> tuple[Listener, Position]:
        """A new listener, and the position after which the queue gives it every event."""
        async with self._starting:
            head = await self._read_head()
            # From here to the end, no await: the head read is the one the listener starts at.
            listener = Listener(asyncio.Queue(self._buffer_events))
            self._listeners.add(listener)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._follow())
            return listener, head

    def leave(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def close(self) -> None:
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while self._listeners:
            assert self._head is not None
            try:
                async with page_session(self._sessions) as session:
                    rows, _ = await read_feed(session, after=self._head, limit=self._page)
            except Exception:
                log.warning("the live feed could not be read; retrying", exc_info=True)
                await asyncio.sleep(POLL_SECONDS * 3)
                continue
            for row in rows:
                self._fan_out(message_of(row))
            await asyncio.sleep(POLL_SECONDS if len(rows) < self._page else 0)
        # Nobody listens: forget the head, so that the next stream starts from the feed's end
        # then rather than from a backlog of events nobody was waiting for.
        self._head = None

    def _fan_out(self, message: FeedMessage) -> None:
        for listener in list(self._listeners):
            try:
                listener.queue.put_nowait(message)
            except asyncio.QueueFull:
                listener.dropped = True
                self._listeners.discard(listener)
        self._head = message.position
