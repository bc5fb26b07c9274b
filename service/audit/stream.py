"""Live updates as Server-Sent Events: one message per committed event, `id:` set to the feed
cursor, so a client that reconnects with Last-Event-ID resumes without a gap or a repeat.

Each stream follows the same gap-free feed as GET /events (audit.feed), polling it in short
sessions; that is what makes it correct with any number of workers and replicas: every worker
reads the committed history from the database, none relies on another's memory.

When the server stops (SIGTERM), each stream ends after the event it is sending, as a complete
response: the client sees a clean end, reconnects (to another worker or replica) after the
`retry:` delay with its Last-Event-ID, and misses nothing; the server logs no error.
"""

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from service.audit.feed import decode_feed_cursor, encode_feed_cursor, feed_end, read_feed
from service.audit.service import event_read
from service.db import page_session
from service.errors import problem_responses
from service.schemas import Text

router = APIRouter(tags=["history"])

POLL_SECONDS = 0.3
PAGE = 200
# How long a client waits before reconnecting after the stream ends (the SSE `retry:` field):
# long enough for a restarting replica to come back, short enough to go unnoticed.
RECONNECT_MS = 3000
# How long a stream may take, once the server is stopping, to reach the end of the event it is
# sending; well within the server's graceful shutdown (cli._serve), after which it is cut.
SHUTDOWN_GRACE_SECONDS = 2.0


async def follow_feed(
    sessionmaker: async_sessionmaker[AsyncSession],
    position: tuple[int, int],
    stopping: anyio.Event,
) -> AsyncIterator[dict[str, Any] | ServerSentEvent]:
    """The feed from `position` on, until `stopping` is set; it then ends between two events."""
    yield ServerSentEvent(retry=RECONNECT_MS)  # no data: it sets the delay, dispatches nothing
    while not stopping.is_set():
        async with page_session(sessionmaker) as session:
            rows, _ = await read_feed(session, after=position, limit=PAGE)
        for row in rows:
            if stopping.is_set():
                return
            position = (row.event.txid, row.event.id)
            yield {
                "id": encode_feed_cursor(position),
                "data": json.dumps(event_read(*row).model_dump(mode="json")),
            }
        if len(rows) < PAGE:
            with anyio.move_on_after(POLL_SECONDS):
                await stopping.wait()


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
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    cursor = last_event_id or after
    if cursor is not None:
        position = decode_feed_cursor(cursor)
    else:
        async with sessionmaker() as session:
            position = await feed_end(session)
    # sse-starlette sets `stopping` when the server begins to shut down, then gives the feed
    # the grace period to end on its own before cancelling it (which would cut the response).
    stopping = anyio.Event()
    return EventSourceResponse(
        follow_feed(sessionmaker, position, stopping),
        ping=15,
        shutdown_event=stopping,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )
