"""Milestones of a programme. Each change is written with its event, under the programme's lock,
so milestones carry the same guarantees as status changes (ordering, hash chain, ETag)."""

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import EventKind
from service.audit.models import Event
from service.audit.service import append_event, utc_now
from service.errors import InvalidInput, NotFound
from service.milestones.models import Milestone
from service.milestones.rules import milestone_state
from service.milestones.schemas import MilestoneCreate, MilestoneRead, MilestoneUpdate
from service.programs.service import Actor, LockedProgram, get_program, lock_program, today_utc


def milestone_read(milestone: Milestone, program_code: str, today: date) -> MilestoneRead:
    return MilestoneRead(
        id=milestone.id,
        program=program_code,
        title=milestone.title,
        due_date=milestone.due_date,
        done_date=milestone.done_date,
        state=milestone_state(milestone.due_date, milestone.done_date, today),
        source_url=milestone.source_url,
        sources=milestone.sources,
        note=milestone.note,
        created_at=milestone.created_at,
        updated_at=milestone.updated_at,
    )


def _check_done_date(done_date: date | None, today: date) -> None:
    if done_date is not None and done_date > today:
        raise InvalidInput(f"done_date {done_date} is in the future (today is {today}).")


async def list_milestones(session: AsyncSession, code: str) -> list[Milestone]:
    program = (await get_program(session, code)).program
    query = select(Milestone).where(Milestone.program_id == program.id).order_by(Milestone.id)
    return list((await session.scalars(query)).all())


async def add_milestone(
    session: AsyncSession,
    code: str,
    data: MilestoneCreate,
    actor: Actor,
    *,
    if_match: str | None = None,
    sources: list[str] | None = None,
    effective_date: date | None = None,
) -> tuple[Milestone, LockedProgram, Event]:
    locked = await lock_program(session, code, if_match=if_match)
    today = today_utc()
    _check_done_date(data.done_date, today)
    now = utc_now()
    milestone = Milestone(
        program_id=locked.program.id,
        title=data.title,
        due_date=data.due_date,
        done_date=data.done_date,
        source_url=data.source_url,
        sources=sources if sources is not None else ([data.source_url] if data.source_url else []),
        note=data.note,
        created_at=now,
        updated_at=now,
    )
    session.add(milestone)
    await session.flush()
    fields = data.model_dump(mode="json", exclude_none=True)
    event = append_event(
        session,
        program=locked.program,
        prev_hash=locked.head_hash,
        kind=EventKind.MILESTONE_ADDED,
        effective_date=effective_date or today,
        recorded_at=now,
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        note=data.note,
        source_url=data.source_url,
        sources=milestone.sources,
        changes={"milestone_id": milestone.id, "fields": fields},
    )
    await session.flush()
    return milestone, locked, event


async def update_milestone(
    session: AsyncSession,
    code: str,
    milestone_id: int,
    data: MilestoneUpdate,
    actor: Actor,
    *,
    if_match: str | None = None,
) -> tuple[Milestone, LockedProgram, Event | None]:
    """Apply what really changes; no change writes no event."""
    locked = await lock_program(session, code, if_match=if_match)
    milestone = await session.scalar(
        select(Milestone).where(
            Milestone.id == milestone_id, Milestone.program_id == locked.program.id
        )
    )
    if milestone is None:
        raise NotFound(f"Programme {code!r} has no milestone {milestone_id}.")
    requested = data.model_dump(exclude_unset=True)
    if "title" in requested and requested["title"] is None:
        raise InvalidInput("A milestone's title cannot be removed.")
    today = today_utc()
    _check_done_date(requested.get("done_date"), today)
    changes: dict[str, Any] = {}
    for name, new_value in requested.items():
        old_value = getattr(milestone, name)
        if old_value != new_value:
            changes[name] = {
                "from": old_value.isoformat() if isinstance(old_value, date) else old_value,
                "to": new_value.isoformat() if isinstance(new_value, date) else new_value,
            }
            setattr(milestone, name, new_value)
    if not changes:
        return milestone, locked, None
    now = utc_now()
    milestone.updated_at = now
    if "source_url" in changes and milestone.source_url:
        milestone.sources = [*milestone.sources, milestone.source_url]
    event = append_event(
        session,
        program=locked.program,
        prev_hash=locked.head_hash,
        kind=EventKind.MILESTONE_UPDATED,
        effective_date=milestone.done_date
        if "done_date" in changes and milestone.done_date
        else today,
        recorded_at=now,
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        source_url=data.source_url,
        changes={"milestone_id": milestone.id, **changes},
    )
    await session.flush()
    return milestone, locked, event
