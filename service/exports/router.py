"""Exports for spreadsheets and notebooks, streamed page by page so memory stays flat however
long the history is. Each page is read in its own short session, in feed order (audit.feed), so
an export never holds a transaction open and can resume from a cursor."""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.feed import decode_feed_cursor, encode_feed_cursor, read_feed
from service.audit.service import event_read
from service.errors import problem_responses
from service.programs.service import list_programs, program_read
from service.schemas import Text

router = APIRouter(prefix="/export", tags=["exports"], responses=problem_responses(422))

PAGE = 1000
AfterQuery = Annotated[
    Text | None, Query(max_length=200, description="Resume after this feed cursor")
]

PROGRAM_COLUMNS = (
    "code", "number", "title", "title_ru", "title_official", "sector", "lead_bodies", "summary",
    "roadmap", "status", "status_label", "status_effective_date", "milestones_total",
    "milestones_done", "milestones_overdue", "next_due_date", "version", "created_at",
    "updated_at", "sources",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "program", "seq", "kind", "from_status", "to_status", "effective_date", "recorded_at",
    "actor", "on_behalf_of", "note", "source_url", "sources", "changes", "prev_hash", "hash",
    "cursor",
)  # fmt: skip


def _csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


async def _event_pages(
    sessionmaker: async_sessionmaker[AsyncSession], after: str | None
) -> AsyncIterator[list[dict[str, Any]]]:
    position = decode_feed_cursor(after)
    while True:
        async with sessionmaker() as session:
            rows, _ = await read_feed(session, after=position, limit=PAGE)
        if not rows:
            return
        page = []
        for event, code in rows:
            position = (event.txid, event.id)
            page.append(
                {
                    **event_read(event, code).model_dump(mode="json"),
                    "cursor": encode_feed_cursor(position),
                }
            )
        yield page


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/programs.csv", response_class=StreamingResponse)
async def programs_csv(request: Request) -> StreamingResponse:
    """Every programme as it stands, one row each, UTF-8 with a byte-order mark so that
    spreadsheets read the Cyrillic titles right."""
    sessionmaker = request.app.state.sessionmaker

    async def rows() -> AsyncIterator[str]:
        yield "\ufeff" + _csv_line(PROGRAM_COLUMNS)
        after_id = 0
        while True:
            async with sessionmaker() as session:
                page = await list_programs(session, after_id=after_id, limit=PAGE)
            for row in page:
                data = program_read(row).model_dump(mode="json")
                data.update(data.pop("progress"))  # milestones_total, …, next_due_date
                yield _csv_line(_cell(data.get(column)) for column in PROGRAM_COLUMNS)
            if len(page) < PAGE:
                return
            after_id = page[-1].program.id

    return StreamingResponse(
        rows(), media_type="text/csv; charset=utf-8", headers=_attachment("programs.csv")
    )


@router.get("/events.csv", response_class=StreamingResponse)
async def events_csv(request: Request, after: AfterQuery = None) -> StreamingResponse:
    """Every event in feed order; the `cursor` column resumes an interrupted export."""
    decode_feed_cursor(after)  # a bad cursor is a 422 before the stream starts

    async def rows() -> AsyncIterator[str]:
        yield "\ufeff" + _csv_line(EVENT_COLUMNS)
        async for page in _event_pages(request.app.state.sessionmaker, after):
            for event in page:
                yield _csv_line(_cell(event.get(column)) for column in EVENT_COLUMNS)

    return StreamingResponse(
        rows(), media_type="text/csv; charset=utf-8", headers=_attachment("events.csv")
    )


@router.get("/events.ndjson", response_class=StreamingResponse)
async def events_ndjson(request: Request, after: AfterQuery = None) -> StreamingResponse:
    """Every event in feed order, one JSON object a line, each with the `cursor` to resume from."""
    decode_feed_cursor(after)

    async def lines() -> AsyncIterator[str]:
        async for page in _event_pages(request.app.state.sessionmaker, after):
            yield "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in page)

    return StreamingResponse(
        lines(), media_type="application/x-ndjson", headers=_attachment("events.ndjson")
    )
