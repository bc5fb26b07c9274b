"""Conditional GET for computed views: an ETag from a cheap fingerprint of the data, checked
before the view is computed, so a dashboard polling every few seconds costs one small query.

The fingerprint must change whenever any answer could: every event bumps its programme's
version, so the sum of versions moves on every committed change to programmes, their history
and milestones (unlike max(events.id), it cannot miss a transaction that commits late);
progress reports and roadmaps are counted. The UTC date is part of it because milestone states
(overdue) and default as-of dates move at midnight.
"""

import hashlib
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from service.audit.service import utc_now
from service.conditions import if_none_match_hits
from service.db import SessionDep
from service.programs.models import Program
from service.roadmaps.models import ProgressReport, Roadmap


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


async def data_fingerprint(session: SessionDep) -> str:
    counts = (
        await session.execute(
            select(
                select(func.coalesce(func.sum(Program.version), 0)).scalar_subquery(),
                select(func.count()).select_from(Program).scalar_subquery(),
                select(func.count()).select_from(ProgressReport).scalar_subquery(),
                select(func.count()).select_from(Roadmap).scalar_subquery(),
            )
        )
    ).one()
    return ".".join(str(count) for count in counts) + f".{utc_now().date().isoformat()}"


async def view_etag(request: Request, session: SessionDep) -> str:
    """A weak ETag for this view of the data; 304 (via NotModified) if the client has it."""
    fingerprint = await data_fingerprint(session)
    # The query string is part of the view (filters, as_of, cursor ...).
    view = f"{request.url.path}?{request.url.query}|{fingerprint}"
    etag = f'W/"{hashlib.sha256(view.encode()).hexdigest()[:32]}"'
    header = request.headers.get("if-none-match")
    if header is not None and if_none_match_hits(header, etag):
        raise NotModified(etag)
    return etag


ViewETag = Annotated[str, Depends(view_etag)]


async def not_modified_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return Response(status_code=304, headers={"ETag": exc.etag})
