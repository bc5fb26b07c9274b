"""Milestones of a programme. Each change is written with its event, under the programme's lock,
so milestones carry the same guarantees as status changes (ordering, hash chain, ETag)."""

from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import EventKind
from service.audit.service import append_event
from service.clock import today_utc, utc_now
from service.errors import InvalidInput, NotFound
from service.filters import require_known
from service.milestones.schemas import MilestoneCreate, MilestoneRead, MilestoneUpdate
from service.models.events import Event
from service.models.milestones import Milestone
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.programs.progress import DAY, state_at
from service.programs.service import Actor, LockedProgram, get_program, lock_program
from service.rules.milestones import CLOSED_STATUSES, MilestoneState, milestone_state


def milestone_read(
    milestone: Milestone, program_code: str, program_status: str, today: date
) -> MilestoneRead:
    return MilestoneRead(
        id=milestone.id,
        program=program_code,
        title=milestone.title,
        due_date=milestone.due_date,
        done_date=milestone.done_date,
        set_on=milestone.set_on,
        state=milestone_state(
            milestone.due_date,
            milestone.done_date,
            today,
            closed=program_status in CLOSED_STATUSES,
        ),
        source_url=milestone.source_url,
        sources=milestone.sources,
        note=milestone.note,
        created_at=milestone.created_at,
        updated_at=milestone.updated_at,
    )


def _check_not_future(name: str, day: date | None, today: date) -> None:
    if day is not None and day > today:
        raise InvalidInput(f"{name} {day} is in the future (today is {today}).")


async def list_milestones(session: AsyncSession, code: str) -> list[MilestoneRead]:
    program = (await get_program(session, code)).program
    query = select(Milestone).where(Milestone.program_id == program.id).order_by(Milestone.id)
    today = today_utc()
    return [
        milestone_read(milestone, code, program.status, today)
        for milestone in await session.scalars(query)
    ]


# Milestones across programmes, with their programme and state today (DAY), by id.
ALL_MILESTONES: Select[Milestone, str, str] = (
    select(Milestone, Program.code, Program.status)
    .join(Program, Program.id == Milestone.program_id)
    .order_by(Milestone.id)
)


async def find_milestones(
    session: AsyncSession,
    *,
    after_id: int,
    limit: int,
    program: str | None = None,
    roadmap: str | None = None,
    state: MilestoneState | None = None,
    due_before: date | None = None,
) -> list[MilestoneRead]:
    """One page of milestones of every programme, filtered; `due_before` is exclusive."""
    query = ALL_MILESTONES.where(Milestone.id > after_id).limit(limit)
    if program is not None:
        query = query.where(Program.code == program)
    if roadmap is not None:
        query = query.join(Roadmap, Roadmap.id == Program.roadmap_id).where(Roadmap.code == roadmap)
    if state is not None:
        query = query.where(state_at(DAY, Program.status) == state.value)
    if due_before is not None:
        query = query.where(Milestone.due_date < due_before)
    today = today_utc()
    rows = (await session.execute(query, {"day": today})).all()
    if not rows:
        await require_known(session, roadmap=roadmap, program=program)
    return [milestone_read(milestone, code, status, today) for milestone, code, status in rows]


async def add_milestone(
    session: AsyncSession,
    code: str,
    data: MilestoneCreate,
    actor: Actor,
    *,
    if_match: str | None = None,
    sources: list[str] | None = None,
) -> tuple[Milestone, LockedProgram, Event]:
    """Add a milestone, with its event effective on the day the act that set it was taken."""
    locked = await lock_program(session, code, if_match=if_match)
    today = today_utc()
    _check_not_future("done_date", data.done_date, today)
    _check_not_future("set_on", data.set_on, today)
    set_on = data.set_on or today
    now = utc_now()
    milestone = Milestone(
        program_id=locked.program.id,
        title=data.title,
        due_date=data.due_date,
        done_date=data.done_date,
        set_on=set_on,
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
        effective_date=set_on,
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
    sources: list[str] | None = None,
) -> tuple[Milestone, LockedProgram, Event | None]:
    """Apply what really changes; no change writes no event. The event is effective when the
    milestone was done, if that is the news; else when the act that set it was taken, if that
    is what changed; else today."""
    locked = await lock_program(session, code, if_match=if_match)
    milestone = await session.scalar(
        select(Milestone).where(
            Milestone.id == milestone_id, Milestone.program_id == locked.program.id
        )
    )
    if milestone is None:
        raise NotFound(f"Programme {code!r} has no milestone {milestone_id}.")
    requested = data.model_dump(exclude_unset=True)
    for required in ("title", "set_on"):
        if required in requested and requested[required] is None:
            raise InvalidInput(f"A milestone's {required} cannot be removed.")
    today = today_utc()
    _check_not_future("done_date", requested.get("done_date"), today)
    _check_not_future("set_on", requested.get("set_on"), today)
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
        effective_date=_update_effective_date(milestone, changes, today),
        recorded_at=now,
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        source_url=data.source_url,
        sources=sources,
        changes={"milestone_id": milestone.id, **changes},
    )
    await session.flush()
    return milestone, locked, event


def _update_effective_date(milestone: Milestone, changes: dict[str, Any], today: date) -> date:
    if "done_date" in changes and milestone.done_date is not None:
        return milestone.done_date
    if "set_on" in changes:
        return milestone.set_on
    return today
