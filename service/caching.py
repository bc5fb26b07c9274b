"""Conditional GET and cached answers for reads, both validated against the database on every
request, so that neither can be stale on any worker.

A read names what its answer is computed from, its *validator*, which a cheap query reads
before the answer is computed: the programme's version for one programme; for computed views,
a fingerprint of all the data, built from what each table declares about itself (db.CachedReads):
the sum of versions of a versioned table (programmes: every event bumps its programme's version,
so the sum moves on every committed change to programmes, their history and milestones, and
unlike max(events.id) it cannot miss a transaction that commits late) and the row count of each
versioned or append-only table (nothing is ever deleted). The UTC date is part of every
validator because milestone states (overdue) and default as-of dates move at midnight.

With the validator the read answers 304 when the client's ETag is current, or the answer this
worker rendered last time for the same request and validator. The cache is an optimisation
private to each worker, never a source of truth: a validator read from the database decides
every hit. Validators only grow, so an entry for an older one is never hit again; the cache is
bounded in bytes and drops the least recently used.

Two limits, by choice. A programme's ETag is its version alone, because that is what If-Match
compares on a write: a client revalidating it after midnight keeps milestone figures (overdue,
next due) a day old until the programme next changes (this worker's cache entry does carry the
day). And "validators only grow" holds for one database: restore or re-create the database
under running workers and restart them, or their caches may answer for the old one.
"""

import functools
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from cachetools import LRUCache
from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Executable, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from service.clock import today_utc
from service.conditions import if_none_match_hits
from service.db import Base, CachedReads, fetch_first, open_session, single_statements

# What every answer varies on: its coding, which the gzip layer sets only on the bodies it
# compresses.
ENCODING_VARY = "Accept-Encoding"


class NotModified(Exception):
    """`vary`: what the 200 would vary on, which its 304 must name too (RFC 9110 §15.4.5), or a
    cache that refreshes its stored headers from the 304 would serve the answer for others."""

    def __init__(self, etag: str, vary: str = ENCODING_VARY) -> None:
        super().__init__(etag)
        self.etag = etag
        self.vary = vary


JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class Validation:
    """How the database says whether an answer stands: one statement, whose first row (with
    the UTC day) is the answer's validator. Both the routes and cached_answers read it, the
    first through SQLAlchemy, the second on the driver."""

    statement: Executable
    params: Mapping[str, Any] = field(default_factory=dict)

    def validator(self, row: Sequence[Any], today: date) -> str:
        return ".".join(str(value) for value in row) + f".{today.isoformat()}"


@dataclass(frozen=True)
class View:
    """One answer: the request that asks for it (`key`), the data it is computed from
    (`validator`, read by `validation`) and its entity tag."""

    key: str
    validator: str
    etag: str
    validation: Validation


@dataclass(frozen=True)
class Entry:
    """An answer as it went out, with what revalidates it and the route that made it (for
    the request log and metrics of an answer given before routing, see cached_answers)."""

    key: str
    validator: str
    validation: Validation
    body: bytes
    media_type: str
    etag: str
    headers: Sequence[tuple[bytes, bytes]]  # as the route's Response wrote them
    route: BaseRoute | None
    path_params: Mapping[str, Any]

    @property
    def size(self) -> int:
        # The key counts too (a query string can be long, and unknown parameters make new
        # keys), and so does what Python spends on the entry and its dict slot.
        return len(self.key) + len(self.validator) + len(self.body) + len(self.etag) + 400

    def response(self) -> Response:
        return _response(self.body, self.media_type, self.etag)

    async def __call__(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        """`response`, written straight to ASGI with the headers it wrote when kept (for
        cached_answers, where building a Response cost a tenth of the whole answer)."""
        headers = list(self.headers)  # a layer on the way out may change them in place
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _response(body: bytes, media_type: str, etag: str) -> Response:
    return Response(body, media_type=media_type, headers={"ETag": etag})


def json_answer(body: bytes, etag: str) -> Response:
    return _response(body, JSON_MEDIA_TYPE, etag)


def not_modified(etag: str, vary: str = ENCODING_VARY) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Vary": vary})


class ViewCache:
    """The answers this worker rendered last, by request, each with its validator."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[str, Entry] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: entry.size
        )

    def entry(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def get(self, view: View) -> Response | None:
        entry = self._entries.get(view.key)
        if entry is None or entry.validator != view.validator:
            return None
        return entry.response()

    def put(self, view: View, answer: BaseModel, scope: Scope) -> Response:
        """Keep `answer` as JSON for `view`, asked for by the request of `scope`."""
        return self.keep(
            view, answer.__pydantic_serializer__.to_json(answer), JSON_MEDIA_TYPE, scope
        )

    def keep(self, view: View, body: bytes, media_type: str, scope: Scope) -> Response:
        response = _response(body, media_type, view.etag)
        entry = Entry(
            view.key,
            view.validator,
            view.validation,
            body,
            media_type,
            view.etag,
            tuple(response.raw_headers),
            scope.get("route"),
            dict(scope.get("path_params", {})),
        )
        if entry.size <= self._entries.maxsize:
            self._entries[view.key] = entry
        return response

    def __len__(self) -> int:
        return len(self._entries)


def view_key(request: Request) -> str:
    return scope_view_key(request.scope)


def scope_view_key(scope: Scope) -> str:
    # The query string is part of the view (filters, as_of, cursor ...), as it was sent.
    return f"{scope['path']}?{scope['query_string'].decode('latin-1')}"


def weak_etag(what: str) -> str:
    return f'W/"{hashlib.sha256(what.encode()).hexdigest()[:32]}"'


def _table_kind(table: Table) -> CachedReads:
    kind = table.info.get("cached_reads")
    if not isinstance(kind, CachedReads):
        raise RuntimeError(f"table {table.name} does not say how cached reads see it")
    return kind


@functools.cache
def fingerprint_statement() -> Select[Any]:
    """One statement over every table a cached read may show. Built once, on the first read
    (every model is imported by then): a statement object reused across requests keeps its
    memoised cache key, so SQLAlchemy neither rebuilds nor recompiles it."""
    parts: list[Any] = []
    for table in sorted(Base.metadata.tables.values(), key=lambda table: table.name):
        kind = _table_kind(table)
        if kind is CachedReads.VERSIONED:
            parts.append(select(func.coalesce(func.sum(table.c.version), 0)).scalar_subquery())
        if kind in (CachedReads.VERSIONED, CachedReads.APPENDED):
            parts.append(select(func.count()).select_from(table).scalar_subquery())
    return select(*parts)


@functools.cache
def data_validation() -> Validation:
    """What validates a computed view: the fingerprint of all the data."""
    return Validation(fingerprint_statement())


async def data_fingerprint(request: Request) -> str:
    validation = data_validation()
    counts = await fetch_first(single_statements(request), validation.statement)
    assert counts is not None
    return validation.validator(counts, today_utc())


def check_not_modified(request: Request, etag: str, *, vary: str = ENCODING_VARY) -> None:
    header = request.headers.get("if-none-match")
    if header is not None and if_none_match_hits(header, etag):
        raise NotModified(etag, vary)


@dataclass(frozen=True)
class CachedView:
    """A computed view's validator, for the route: `await view.respond(compute)` answers from
    this worker's cache when the data stands, else computes the answer in a new session."""

    view: View
    cache: ViewCache
    request: Request

    def session(self) -> AsyncSession:
        """A session for computing the answer: opened only on a miss, as a hit needs none."""
        return open_session(self.request)

    @property
    def etag(self) -> str:
        return self.view.etag

    def hit(self) -> Response | None:
        return self.cache.get(self.view)

    def answer(self, model: BaseModel) -> Response:
        return self.cache.put(self.view, model, self.request.scope)

    def answer_text(self, text: str, media_type: str) -> Response:
        return self.cache.keep(self.view, text.encode(), media_type, self.request.scope)

    async def respond(self, compute: Callable[[AsyncSession], Awaitable[BaseModel]]) -> Response:
        """The one way to declare a cached read: what the answer is computed from, in a session
        opened only on a miss (a hit needs none)."""
        if (cached := self.hit()) is not None:
            return cached
        async with self.session() as session:
            return self.answer(await compute(session))


async def computed_view(request: Request) -> CachedView:
    """A weak ETag for this view of all the data; 304 (via NotModified) if the client has it."""
    key = view_key(request)
    fingerprint = await data_fingerprint(request)
    view = View(key, fingerprint, weak_etag(f"{key}|{fingerprint}"), data_validation())
    check_not_modified(request, view.etag)
    return CachedView(view, request.app.state.view_cache, request)


ComputedView = Annotated[CachedView, Depends(computed_view)]


async def not_modified_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return not_modified(exc.etag, exc.vary)
