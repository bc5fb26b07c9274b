"""Corrections: a wrongly recorded status change is voided by a new event, never edited.

A `corrected` event names the change it voids (`changes: {"voids": seq}`) and puts the
programme back in the status it had before, effective as that status was. Only the latest
status event can be voided, and not a correction itself (a new transition undoes that), so
each voided change is followed directly by its correction: that is what lets an as-of read
simply take the newest status event (service.programs.asof).
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import STATUS_EVENT_KINDS, EventKind
from service.errors import CorrectionNotAllowed, InvalidInput
from service.models.events import Event
from service.programs.schemas import CorrectionRequest
from service.programs.service import (
    Actor,
    ProgramRow,
    as_changed,
    cited,
    lock_program,
    record_status_change,
)
from service.rules.workflow import Status


async def correct_status(
    session: AsyncSession,
    code: str,
    request: CorrectionRequest,
    actor: Actor,
    *,
    if_match: str | None = None,
    require_source: bool = False,
) -> tuple[ProgramRow, Event]:
    locked = await lock_program(session, code, if_match=if_match)  # a 404 or 412 comes first
    source_url, citations = cited(request.source_url, request.sources, required=require_source)
    program = locked.program
    # The newest two status events: the one to void and the one whose status comes back (a
    # programme always has at least its `created` event).
    latest, *earlier = (
        await session.execute(
            select(Event.seq, Event.kind, Event.to_status, Event.effective_date)
            .where(Event.program_id == program.id, Event.kind.in_(STATUS_EVENT_KINDS))
            .order_by(Event.seq.desc())
            .limit(2)
        )
    ).all()
    before = earlier[0] if earlier else None
    if request.event > program.version:
        raise InvalidInput(f"Programme {code!r} has no event seq {request.event}.")
    if request.event != latest.seq:
        raise CorrectionNotAllowed(
            f"Only the programme's latest status event can be corrected: seq {latest.seq} "
            f"({latest.kind}), not seq {request.event}.",
            latest_status_event=latest.seq,
        )
    if latest.kind == EventKind.CORRECTED:
        raise CorrectionNotAllowed(
            f"Seq {latest.seq} is itself a correction; record a new transition to undo it.",
            latest_status_event=latest.seq,
        )
    if latest.kind == EventKind.CREATED or before is None:
        raise CorrectionNotAllowed(
            f"Seq {latest.seq} created the programme; there is no status before it to go back "
            "to (withdraw the programme instead).",
            latest_status_event=latest.seq,
        )
    status_before = program.status
    event = record_status_change(
        session,
        locked,
        Status(before.to_status),
        before.effective_date,
        actor,
        kind=EventKind.CORRECTED,
        note=request.reason,
        source_url=source_url,
        sources=citations,
        changes={"voids": latest.seq},
    )
    await session.flush()
    return await as_changed(session, locked, status_before), event
