"""Answers from this worker's cache, before routing: a validated cache hit costs one small
statement and the bytes.

For a read the cache can answer (service.caching), the framework cost more than the answer:
routing, dependency solving, parameter validation, SQLAlchemy's execution path for the one
validating statement. Here a GET is looked up in the cache by its key alone (path and query
string, as sent), the entry's validator is read from the database now, by its prebuilt
statement on the driver (db.first_row_on_driver), and if it stands the kept answer goes out:
the same body, media type and ETag, or a 304 for a client that holds that ETag.

What a route checks first is settled by the key: an entry exists only because the same path
and query were answered 200 by the route (so the query was valid and the programme existed),
and the validator read now decides, as on the route, so no answer is older than a change
acknowledged before the request began, on any worker. Whatever this cannot settle goes to the
framework unchanged: a miss, a validator that moved, a caller with an Authorization header, a
service whose reads need a key (ROADMAP_REQUIRE_AUTH_FOR_READS), or a connection that died
during the statement (the route tries again on another). A database unreachable or too busy
to answer in time is answered at once, as the route would answer it (a 503 with
Retry-After), rather than made to wait twice.

It sits inside the other middleware, so HEAD, gzip, CORS, the request log and metrics are as
for any answer; the entry names the route that made it, for the log's and metrics' label.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.caching import ViewCache, not_modified, scope_view_key
from service.clock import today_utc
from service.conditions import if_none_match_hits
from service.db import ConnectionLost, first_row_on_driver
from service.errors import database_trouble_response

_AUTHORIZATION = b"authorization"
_IF_NONE_MATCH = b"if-none-match"


class CachedAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = await _cached_answer(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _cached_answer(scope: Scope) -> ASGIApp | None:
    state = scope["app"].state
    if state.settings.require_auth_for_reads:
        return None
    if_none_match: str | None = None
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            return None
        if name == _IF_NONE_MATCH and if_none_match is None:  # the first, as Request reads it
            if_none_match = value.decode("latin-1")
    cache: ViewCache = state.view_cache
    entry = cache.entry(scope_view_key(scope))
    if entry is None:
        return None
    # For the request log and metrics, whatever comes of it (routing sets them again).
    scope["route"], scope["path_params"] = entry.route, dict(entry.path_params)
    validation = entry.validation
    try:
        row = await first_row_on_driver(
            state.autocommit_engine, validation.statement, validation.params
        )
    except ConnectionLost:
        return None  # the route tries again, on another connection
    except Exception as error:
        # The database unreachable or too busy: the route would only wait as long again.
        answer = database_trouble_response(Request(scope), error)
        if answer is None:
            raise  # a bug: a 500, not a silent detour through the route
        return answer
    if row is None or validation.validator(row, today_utc()) != entry.validator:
        return None
    if if_none_match is not None and if_none_match_hits(if_none_match, entry.etag):
        return not_modified(entry.etag)
    return entry
