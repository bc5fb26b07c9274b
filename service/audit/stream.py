"""Live updates as Server-Sent Events: one message per committed event, `id:` set to the feed
cursor, so a client that reconnects with Last-Event-ID resumes without a gap or a repeat.

Each stream follows the same gap-free feed as GET /events (audit.feed), polling it in short
sessions; that is what makes it correct with any number of workers and replicas: every worker
reads the committed history from the database, none relies on another's memory.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sse_starlette import EventSourceResponse

from service.audit.feed import decode_feed_cursor, encode_feed_cursor, feed_end, read_feed
from service.audit.service import event_read
from service.errors import problem_responses
from service.schemas import Text

router = APIRouter(tags=["history"])

POLL_SECONDS = 0.3
PAGE = 200


async def follow_feed(
    sessionmaker: async_sessionmaker[AsyncSession], position: tuple[int, int]
) -> AsyncIterator[dict[str, Any]]:
    while True:
        async with sessionmaker() as session:
            rows, _ = await read_feed(session, after=position, limit=PAGE)
        for event, code in rows:
            position = (event.txid, event.id)
            yield {
                "id": encode_feed_cursor(position),
                "data": json.dumps(event_read(event, code).model_dump(mode="json")),
            }
        if len(rows) < PAGE:
            await asyncio.sleep(POLL_SECONDS)


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
    return EventSourceResponse(follow_feed(sessionmaker, position), ping=15)
