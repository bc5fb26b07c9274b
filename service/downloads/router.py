"""Downloads for spreadsheets and notebooks, at /export/…: CSV (UTF-8 with a byte-order mark, so
spreadsheets read the Cyrillic titles right) and NDJSON, streamed page by page (see
downloads.service). The whole record as one file is service.archive's.

Everything that can refuse a request happens before the 200 starts: query values, filters
naming nothing (422), the cursor, and If-None-Match (304, without a body). Each export has a
weak ETag over its query string and what it is computed from: the feed's end for events (as
for GET /events), the data fingerprint of service.caching for the others."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.feed import (
    FeedFilters,
    attributions_recorded,
    decode_feed_cursor,
    encode_feed_cursor,
    feed_end,
)
from service.audit.kinds import EventKind
from service.audit.rendered import Form
from service.caching import check_not_modified, computed_view, view_key, weak_etag
from service.db import open_session
from service.downloads import service
from service.downloads.formats import (
    EVENT_COLUMNS,
    MILESTONE_COLUMNS,
    PROGRAM_COLUMNS,
    PROGRESS_REPORT_COLUMNS,
    csv_cell,
    csv_lines,
)
from service.downloads.service import PAGE, Row, Sessions, keyset_pages
from service.errors import problem_responses
from service.filters import require_known
from service.milestones.schemas import MilestoneRead
from service.milestones.service import find_milestones
from service.models.roadmaps import ProgressReport
from service.programs.dependencies import (
    AsOfQuery,
    KnownAtQuery,
    ProgramFiltersDep,
    known_at_utc,
)
from service.programs.service import ProgramRow, list_programs
from service.rules.milestones import MilestoneState
from service.schemas import Text

router = APIRouter(prefix="/export", tags=["exports"], responses=problem_responses(422))

CSV = "text/csv; charset=utf-8"
NDJSON = "application/x-ndjson"
AfterQuery = Annotated[
    Text | None, Query(max_length=200, description="Resume after this feed cursor")
]
RoadmapQuery = Annotated[Text | None, Query(max_length=64, description="A roadmap's code")]


def _download(
    body: AsyncIterator[str] | AsyncIterator[bytes], *, name: str, media_type: str, etag: str
) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "ETag": etag}
    return StreamingResponse(body, media_type=media_type, headers=headers)


def csv_download(
    pages: AsyncIterator[list[Row]], *, name: str, columns: Sequence[str], etag: str
) -> StreamingResponse:
    """A CSV of `columns`, one chunk a page: a chunk a row would cost a gzip flush a row."""

    async def body() -> AsyncIterator[str]:
        yield "\ufeff" + csv_lines([columns])
        async for page in pages:
            yield csv_lines([csv_cell(row.get(column)) for column in columns] for row in page)

    return _download(body(), name=name, media_type=CSV, etag=etag)


async def data_etag(
    request: Request, *, roadmap: str | None = None, program: str | None = None
) -> str:
    """Refuse a roadmap or programme filter naming nothing, then the ETag of this export of the
    data, or 304 (via NotModified) if the client has it."""
    if roadmap is not None or program is not None:
        async with open_session(request) as session:
            await require_known(session, roadmap=roadmap, program=program)
    return (await computed_view(request)).etag


@router.get("/programs.csv", response_class=StreamingResponse)
async def programs_csv(request: Request, filters: ProgramFiltersDep) -> StreamingResponse:
    """The programmes as GET /programs lists them, with the same filters, one row each."""
    selection = filters.selection()
    etag = await data_etag(request, roadmap=filters.roadmap)

    async def read(session: AsyncSession, after_id: int) -> list[ProgramRow]:
        return await list_programs(
            session,
            after_id=after_id,
            limit=PAGE,
            **selection,
        )

    pages = keyset_pages(
        request.app.state.sessionmaker,
        read,
        key=lambda row: row.program.id,
        render=service.program_row,
    )
    return csv_download(pages, name="programs.csv", columns=PROGRAM_COLUMNS, etag=etag)


@router.get("/progress_reports.csv", response_class=StreamingResponse)
async def progress_reports_csv(request: Request, roadmap: RoadmapQuery = None) -> StreamingResponse:
    """Every progress report, with its roadmap, in the order they were recorded."""
    etag = await data_etag(request, roadmap=roadmap)

    async def read(session: AsyncSession, after_id: int) -> list[tuple[ProgressReport, str]]:
        return await service.progress_reports_page(session, after_id, roadmap=roadmap)

    pages = keyset_pages(
        request.app.state.sessionmaker,
        read,
        key=lambda item: item[0].id,
        render=service.progress_report_row,
    )
    return csv_download(
        pages, name="progress_reports.csv", columns=PROGRESS_REPORT_COLUMNS, etag=etag
    )


@router.get("/milestones.csv", response_class=StreamingResponse)
async def milestones_csv(
    request: Request,
    program: Annotated[Text | None, Query(max_length=64, description="A programme's code")] = None,
    roadmap: RoadmapQuery = None,
    state: Annotated[MilestoneState | None, Query(description="State today (UTC)")] = None,
    due_before: Annotated[date | None, Query(description="Due before this day")] = None,
) -> StreamingResponse:
    """The milestones as GET /milestones lists them, with the same filters, one row each."""
    etag = await data_etag(request, roadmap=roadmap, program=program)

    async def read(session: AsyncSession, after_id: int) -> list[MilestoneRead]:
        return await find_milestones(
            session,
            after_id=after_id,
            limit=PAGE,
            program=program,
            roadmap=roadmap,
            state=state,
            due_before=due_before,
        )

    pages = keyset_pages(
        request.app.state.sessionmaker,
        read,
        key=lambda milestone: milestone.id,
        render=lambda milestone: milestone.model_dump(mode="json"),
    )
    return csv_download(pages, name="milestones.csv", columns=MILESTONE_COLUMNS, etag=etag)


@dataclass(frozen=True)
class EventExport:
    """An export of the feed, checked and ready: where it starts and ends, and its ETag."""

    sessions: Sessions
    after: tuple[int, int]
    until: tuple[int, int]
    filters: FeedFilters
    etag: str

    def text(self, form: Form) -> AsyncIterator[bytes]:
        return service.event_text(
            self.sessions, form, after=self.after, until=self.until, filters=self.filters
        )


async def event_export(
    request: Request,
    after: AfterQuery = None,
    program: Annotated[Text | None, Query(max_length=64, description="A programme's code")] = None,
    kind: EventKind | None = None,
    roadmap: RoadmapQuery = None,
    as_of: Annotated[
        AsOfQuery,
        Query(
            description="Only events effective by the end of this day (in any form the lists take)"
        ),
    ] = None,
    known_at: Annotated[
        KnownAtQuery, Query(description="Only events recorded by this moment (with a zone)")
    ] = None,
) -> EventExport:
    """The feed as GET /events reads it (same cursor, same `program` and `kind`), up to its
    end now; the ETag is that end's, so it moves exactly when a new event settles."""
    position = decode_feed_cursor(after)
    filters = FeedFilters(
        program=program, kind=kind, roadmap=roadmap, as_of=as_of, known_at=known_at_utc(known_at)
    )
    async with open_session(request) as session:
        await require_known(session, program=program, roadmap=roadmap)
        end = await feed_end(session)
        attributed = await attributions_recorded(session)
    etag = weak_etag(f"{view_key(request)}|{encode_feed_cursor(end)}|{attributed}")
    check_not_modified(request, etag)
    return EventExport(request.app.state.sessionmaker, position, end, filters, etag)


EventExportDep = Annotated[EventExport, Depends(event_export)]


@router.get("/events.csv", response_class=StreamingResponse)
async def events_csv(export: EventExportDep) -> StreamingResponse:
    """The events in feed order; the `cursor` column resumes an interrupted export (`after`)."""

    async def body() -> AsyncIterator[bytes]:
        yield ("\ufeff" + csv_lines([EVENT_COLUMNS])).encode()
        async for text in export.text(Form.CSV):
            yield text

    return _download(body(), name="events.csv", media_type=CSV, etag=export.etag)


@router.get("/events.ndjson", response_class=StreamingResponse)
async def events_ndjson(export: EventExportDep) -> StreamingResponse:
    """The events in feed order, one JSON object a line, each with the `cursor` to resume
    after it (`after`)."""
    return _download(
        export.text(Form.NDJSON), name="events.ndjson", media_type=NDJSON, etag=export.etag
    )
