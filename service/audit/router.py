from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.audit.feed import (
    FeedFilters,
    decode_feed_cursor,
    encode_feed_cursor,
)
from service.audit.kinds import EventKind
from service.audit.rendered import feed_page_text
from service.audit.schemas import DigestRead, EventFeedPage, MismatchRead, VerifyRead
from service.audit.verify import digest_as_of, verify_chains
from service.caching import check_not_modified, json_answer, view_key, weak_etag
from service.db import open_session
from service.errors import problem_responses
from service.pagination import DEFAULT_LIMIT, FeedLimitQuery
from service.schemas import Text

router = APIRouter(tags=["history"])


@router.get("/events", response_model=EventFeedPage, responses=problem_responses(422))
async def list_events(
    request: Request,
    after: Annotated[
        str | None, Query(max_length=200, description="The next_cursor of the previous page")
    ] = None,
    limit: FeedLimitQuery = DEFAULT_LIMIT,
    program: Annotated[Text | None, Query(max_length=64)] = None,
    kind: EventKind | None = None,
) -> Response:
    """Every committed event in feed order. `next_cursor` is always set (equal to `after` when
    nothing is new), so a consumer that keeps it and polls sees each event exactly once."""
    async with open_session(request) as session:
        page = await feed_page_text(
            session,
            after=decode_feed_cursor(after),
            limit=limit,
            filters=FeedFilters(program=program, kind=kind),
        )
    # What a page holds is settled by where it ends, not by the data's fingerprint: an event
    # below the horizon can become visible without any new commit (see audit.feed).
    next_cursor = encode_feed_cursor(page.position)
    etag = weak_etag(f"{view_key(request)}|{next_cursor}|{page.attributions}")
    check_not_modified(request, etag)
    # EventFeedPage, written out: its items come as JSON text (audit.rendered), and a cursor
    # is URL-safe base64, which JSON needs no escape for.
    body = f'{{"items":[{page.items}],"next_cursor":"{next_cursor}"}}'
    return json_answer(body.encode(), etag)


@router.get("/audit/verify", response_model=VerifyRead)
async def verify_history(request: Request) -> VerifyRead:
    """Recompute every programme's hash chain and report each bad event; on PostgreSQL, also
    each event whose served text (feed, exports) is not what the event makes."""
    async with open_session(request) as session:
        report = await verify_chains(session)
    return VerifyRead(
        ok=report.ok,
        programs_checked=report.programs_checked,
        events_checked=report.events_checked,
        mismatches=[MismatchRead(**vars(m)) for m in report.mismatches],
    )


@router.get("/audit/digest", response_model=DigestRead)
async def history_digest(request: Request) -> DigestRead:
    """One digest over every chain's head as of the newest settled event. Keep it with its
    last_event_id; `roadmap verify --digest D --at ID` later proves nothing before it changed."""
    async with open_session(request) as session:
        digest = await digest_as_of(session)
    return DigestRead(digest=digest.digest, last_event_id=digest.last_event_id)
