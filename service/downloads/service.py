"""Reading an export page by page, each page in its own short session, so an export never holds
a transaction (or, on SQLite, a read snapshot) open however slowly the client reads, and memory
stays flat however long the history is. The readers of programmes, milestones and progress
reports yield pages of rows rendered as JSON values (ISO dates, "…Z" timestamps), which the
router lays out as CSV; the events come as text already (event_text)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import rendered
from service.audit.feed import FeedFilters, encode_feed_cursor, read_feed
from service.audit.rendered import Form
from service.audit.service import EventRow, event_read
from service.db import page_session
from service.downloads.formats import EVENT_COLUMNS, csv_cell, csv_lines
from service.models.roadmaps import ProgressReport, Roadmap
from service.programs.service import ProgramRow, program_read
from service.roadmaps.service import progress_report_read

# Rows a page: a statement's own cost spread over many. Two pages are held at a time (the next
# is read ahead): a few MB for events as they are, 80 MB if every note were 10,000 Cyrillic
# characters long.
PAGE = 2000
Row = dict[str, Any]
Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")


async def keyset_pages(
    sessions: Sessions,
    read: Callable[[AsyncSession, int], Awaitable[list[T]]],
    *,
    key: Callable[[T], int],
    render: Callable[[T], Row],
) -> AsyncIterator[list[Row]]:
    """Pages of `read(session, after_id)` (PAGE rows at most, in id order) until one is short.
    A new export copies this: a page reader keyed by id, and a row renderer."""
    after_id = 0
    while True:
        async with page_session(sessions) as session:
            page = await read(session, after_id)
        if page:
            yield [render(item) for item in page]
        if len(page) < PAGE:
            return
        after_id = key(page[-1])


def program_row(row: ProgramRow) -> Row:
    data = program_read(row).model_dump(mode="json")
    data.update(data.pop("progress"))  # milestones_total, …, next_due_date as columns
    return data


async def progress_reports_page(
    session: AsyncSession, after_id: int, *, roadmap: str | None
) -> list[tuple[ProgressReport, str]]:
    query = (
        select(ProgressReport, Roadmap.code)
        .join(Roadmap, Roadmap.id == ProgressReport.roadmap_id)
        .where(ProgressReport.id > after_id)
        .order_by(ProgressReport.id)
        .limit(PAGE)
    )
    if roadmap is not None:
        query = query.where(Roadmap.code == roadmap)
    return [(report, code) for report, code in await session.execute(query)]


def progress_report_row(item: tuple[ProgressReport, str]) -> Row:
    return progress_report_read(*item).model_dump(mode="json")


async def event_text(
    sessions: Sessions,
    form: Form,
    *,
    after: tuple[int, int],
    until: tuple[int, int],
    filters: FeedFilters,
) -> AsyncIterator[bytes]:
    """The feed after `after` up to `until` (the end when the export began, so an export under
    a steady stream of writes still ends, and holds exactly what its ETag names), in feed
    order, as NDJSON lines or CSV lines, a page at a time, each event with the cursor to resume
    after it. PostgreSQL writes the text itself (audit.rendered); elsewhere it is laid out
    here, from the events' models.

    The next page is read while this one goes out, so the database and the worker work at
    once: an export then takes about as long as the slower of the two, not their sum. Two
    pages at most are held, and each read is a short session of its own."""

    async def page(position: tuple[int, int]) -> tuple[bytes, tuple[int, int]]:
        async with page_session(sessions) as session:
            if rendered.supported(session):
                return await rendered.read_export(
                    session, form, after=position, until=until, limit=PAGE, filters=filters
                )
            rows, position = await read_feed(
                session, after=position, until=until, limit=PAGE, filters=filters
            )
            return laid_out(form, rows).encode(), position

    reading = asyncio.ensure_future(page(after))
    try:
        while True:
            # Shielded: a cancelled waiter would cancel the read mid-statement (see below).
            text, position = await asyncio.shield(reading)
            if not text:
                return
            reading = asyncio.ensure_future(page(position))
            yield text
    finally:
        # The client went away, or the server is stopping: the read in flight is let end (it
        # takes milliseconds), so its connection goes back to the pool whole (db.page_session
        # says why a read cut short does harm); the cancellation lands after it.
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await reading


def laid_out(form: Form, rows: list[EventRow]) -> str:
    events = []
    for row in rows:
        cursor = encode_feed_cursor((row.event.txid, row.event.id))
        events.append({**event_read(*row).model_dump(mode="json"), "cursor": cursor})
    if form is Form.CSV:
        return csv_lines([csv_cell(event.get(c)) for c in EVENT_COLUMNS] for event in events)
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
