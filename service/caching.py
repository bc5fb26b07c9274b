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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from cachetools import LRUCache
from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.clock import today_utc
from service.conditions import if_none_match_hits
from service.db import Base, CachedReads, fetch_first, open_session, single_statements


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


@dataclass(frozen=True)
class View:
    """One answer: the request that asks for it (`key`), the data it is computed from
    (`validator`) and its entity tag."""

    key: str
    validator: str
    etag: str


@dataclass(frozen=True)
class _Entry:
    key: str
    validator: str
    body: bytes
    etag: str

    @property
    def size(self) -> int:
        # The key counts too (a query string can be long, and unknown parameters make new
        # keys), and so does what Python spends on the entry and its dict slot.
        return len(self.key) + len(self.validator) + len(self.body) + len(self.etag) + 400


def json_answer(body: bytes, etag: str) -> Response:
    return Response(body, media_type="application/json", headers={"ETag": etag})


class ViewCache:
    """The answers this worker rendered last, by request, each with its validator."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[str, _Entry] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: entry.size
        )

    def get(self, view: View) -> Response | None:
        entry = self._entries.get(view.key)
        if entry is None or entry.validator != view.validator:
            return None
        return json_answer(entry.body, entry.etag)

    def put(self, view: View, answer: BaseModel) -> Response:
        body = answer.__pydantic_serializer__.to_json(answer)
        entry = _Entry(view.key, view.validator, body, view.etag)
        if entry.size <= self._entries.maxsize:
            self._entries[view.key] = entry
        return json_answer(body, view.etag)

    def __len__(self) -> int:
        return len(self._entries)


def view_key(request: Request) -> str:
    # The query string is part of the view (filters, as_of, cursor ...).
    return f"{request.url.path}?{request.url.query}"


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


async def data_fingerprint(request: Request) -> str:
    counts = await fetch_first(single_statements(request), fingerprint_statement())
    assert counts is not None
    return ".".join(str(count) for count in counts) + f".{today_utc().isoformat()}"


def check_not_modified(request: Request, etag: str) -> None:
    header = request.headers.get("if-none-match")
    if header is not None and if_none_match_hits(header, etag):
        raise NotModified(etag)


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
        return self.cache.put(self.view, model)

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
    view = View(key, fingerprint, weak_etag(f"{key}|{fingerprint}"))
    check_not_modified(request, view.etag)
    return CachedView(view, request.app.state.view_cache, request)


ComputedView = Annotated[CachedView, Depends(computed_view)]


async def not_modified_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return Response(status_code=304, headers={"ETag": exc.etag})
