"""Live updates as Server-Sent Events: one message per committed event, `id:` set to the feed
cursor, so a client that reconnects with Last-Event-ID resumes without a gap or a repeat.

Each stream follows the same gap-free feed as GET /events (audit.feed), through its worker's
one follower (audit.follower), which polls the feed for all of them; that is what makes it
correct with any number of workers and replicas: every worker reads the committed history from
the database, none relies on another's memory.

When the server stops (SIGTERM), each stream ends after the event it is sending, as a complete
response: the client sees a clean end, reconnects (to another worker or replica) after the
`retry:` delay with its Last-Event-ID, and misses nothing; the server logs no error.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from service.audit.feed import decode_feed_cursor, read_feed
from service.audit.follower import PAGE, FeedFollower, FeedMessage, Position, message_of
from service.db import page_session
from service.errors import problem_responses
from service.schemas import Text

router = APIRouter(tags=["history"])

# How long a client waits before reconnecting after the stream ends (the SSE `retry:` field):
# long enough for a restarting replica to come back, short enough to go unnoticed.
RECONNECT_MS = 3000
# How long a stream may take, once the server is stopping, to reach the end of the event it is
# sending; well within the server's graceful shutdown (cli._serve), after which it is cut.
SHUTDOWN_GRACE_SECONDS = 2.0
# How often a stream waiting for events looks whether the server is stopping.
STOP_CHECK_SECONDS = 0.25


def _sse(message: FeedMessage) -> dict[str, Any]:
    return {"id": message.id, "data": message.data}


async def follow_feed(
    sessions: async_sessionmaker[AsyncSession],
    follower: FeedFollower,
    after: Position | None,
    stopping: anyio.Event,
) -> AsyncIterator[dict[str, Any] | ServerSentEvent]:
    """The feed after `after` (None: from now on), until `stopping` is set; it then ends
    between two events. What precedes the worker's follower is read here, page by page; the
    rest comes from the follower's queue."""
    yield ServerSentEvent(retry=RECONNECT_MS)  # no data: it sets the delay, dispatches nothing
    listener, head = await follower.join()
    try:
        position = head if after is None else after
        while position < head and not stopping.is_set():  # catching up, from the database
            async with page_session(sessions) as session:
                rows, _ = await read_feed(session, after=position, limit=PAGE, until=head)
            if not rows:
                break
            for row in rows:
                message = message_of(row)
                position = message.position
                yield _sse(message)
                if stopping.is_set():
                    return
        while not stopping.is_set():
            try:
                message = await asyncio.wait_for(listener.queue.get(), STOP_CHECK_SECONDS)
            except TimeoutError:
                if listener.dropped:  # too far behind, and all it was given is sent
                    return
                continue
            if message.position <= position:  # already sent while catching up
                continue
            position = message.position
            yield _sse(message)
    finally:
        follower.leave(listener)


@router.get(
    "/events/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(422)},
)
async def stream_events(
    request: Request,
    after: Annotated[
        Text | None, Query(max_length=200, description="Start after this feed cursor")
    ] = None,
    last_event_id: Annotated[Text | None, Header(alias="Last-Event-ID", max_length=200)] = None,
) -> EventSourceResponse:
    """Events as they are committed. Without a cursor the stream starts at the current end of
    the feed; `after` (or the Last-Event-ID a browser sends when it reconnects) resumes."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    follower: FeedFollower = request.app.state.feed_follower
    cursor = last_event_id or after
    position = decode_feed_cursor(cursor) if cursor is not None else None
    await follower.prime()
    # sse-starlette sets `stopping` when the server begins to shut down, then gives the feed
    # the grace period to end on its own before cancelling it (which would cut the response).
    stopping = anyio.Event()
    return EventSourceResponse(
        follow_feed(sessions, follower, position, stopping),
        ping=15,
        shutdown_event=stopping,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )
