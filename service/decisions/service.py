"""Decisions: one act that moves many programmes, recorded all at once or not at all.

Every programme a decision names is locked (in code order, so that two decisions sharing
programmes queue rather than deadlock), every step is checked against where the programme
stands, and only when all of them may be made are the decision and its events written, in the
one transaction of the request. Each event names the decision, and its hash covers that.
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, Subquery, func, select, tuple_, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import EventRow, events_with_codes
from service.clock import today_utc, utc_now
from service.decisions.schemas import DecisionCreate, DecisionRead, TransitionRefusal
from service.errors import (
    Conflict,
    DecisionNotAllowed,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from service.filters import require_known
from service.models.decisions import Decision, DecisionAttribution
from service.models.events import Event
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.programs.service import Actor, LockedProgram, cited, lock_program, record_status_change
from service.rules.workflow import Status, refusal_of


@dataclass
class DecisionRecord:
    """A decision with the events it wrote (event, programme code), oldest first."""

    decision: Decision
    events: list[EventRow] = field(default_factory=list)

    @property
    def programs(self) -> list[str]:
        return list(dict.fromkeys(row.program for row in self.events))


def decision_read(decision: Decision, programs: list[str]) -> DecisionRead:
    return DecisionRead(
        code=decision.code,
        title=decision.title,
        title_ru=decision.title_ru,
        body=decision.body,
        number=decision.number,
        date=decision.date,
        source_url=decision.source_url,
        sources=decision.sources,
        note=decision.note,
        actor=decision.actor,
        on_behalf_of=decision.on_behalf_of,
        recorded_at=decision.recorded_at,
        programs=programs,
    )


def _refusals(data: DecisionCreate, locked: dict[str, LockedProgram]) -> list[TransitionRefusal]:
    """Every step that cannot be made, each checked from where the steps before it leave its
    programme."""
    standing = {
        code: (Status(row.program.status), row.program.status_effective_date)
        for code, row in locked.items()
    }
    refusals = []
    for step in data.transitions:
        status, since = standing[step.program]
        refusal = refusal_of(status, since, step.to_status, data.date)
        if refusal is None:
            standing[step.program] = (step.to_status, data.date)
            continue
        refusals.append(
            TransitionRefusal(
                program=step.program,
                to_status=step.to_status,
                refused=refusal.refused,
                current_status=status,
                status_effective_date=since,
                allowed_targets=refusal.allowed_targets,
                reason=refusal.reason,
            )
        )
    return refusals


async def _lock_programs(session: AsyncSession, data: DecisionCreate) -> dict[str, LockedProgram]:
    codes = sorted({step.program for step in data.transitions})
    known = set((await session.scalars(select(Program.code).where(Program.code.in_(codes)))).all())
    unknown = [
        (index, step.program)
        for index, step in enumerate(data.transitions)
        if step.program not in known
    ]
    if unknown:
        names = ", ".join(sorted({code for _index, code in unknown}))
        raise InvalidInput(
            f"There is no programme with code {names}; nothing was recorded.",
            errors=[
                {
                    "loc": ["body", "transitions", index, "program"],
                    "msg": f"there is no programme with code {code!r}",
                    "type": "unknown_value",
                }
                for index, code in unknown
            ],
        )
    # In code order: two decisions sharing programmes queue instead of deadlocking.
    return {code: await lock_program(session, code) for code in codes}


def _check_versions(
    data: DecisionCreate, locked: dict[str, LockedProgram], *, required: bool
) -> None:
    """The decision's preconditions, its If-Match: each step's `version`, as the programme
    stood before the decision."""
    if required and any(step.version is None for step in data.transitions):
        raise PreconditionRequired(
            "This server requires If-Match on every change: give each step the programme's "
            "version as last read."
        )
    changed = {
        step.program: locked[step.program].program.version
        for step in data.transitions
        if step.version is not None and step.version != locked[step.program].program.version
    }
    if changed:
        named = ", ".join(f"{code} is at version {version}" for code, version in changed.items())
        raise PreconditionFailed(
            f"Programmes have changed since they were read ({named}); nothing was recorded.",
            versions=changed,
        )


async def record_decision(
    session: AsyncSession,
    data: DecisionCreate,
    actor: Actor,
    *,
    today: date | None = None,
    require_source: bool = False,
    require_versions: bool = False,
) -> DecisionRecord:
    today = today or today_utc()
    if data.date > today:
        raise InvalidInput(f"date {data.date} is in the future (today is {today}).")
    if await session.scalar(select(Decision.id).where(Decision.code == data.code)) is not None:
        raise Conflict(f"A decision with code {data.code!r} already exists.")
    source_url, citations = cited(data.source_url, data.sources, required=require_source)
    locked = await _lock_programs(session, data)
    _check_versions(data, locked, required=require_versions)
    refusals = _refusals(data, locked)
    if refusals:
        moving = ", ".join(dict.fromkeys(refusal.program for refusal in refusals))
        raise DecisionNotAllowed(
            f"{len(refusals)} of the decision's {len(data.transitions)} status changes cannot "
            f"be made ({moving}); nothing was recorded.",
            errors=[refusal.model_dump(mode="json") for refusal in refusals],
        )
    now = utc_now()  # one moment for the act and all it changes: no known_at sees half of it
    decision = Decision(
        code=data.code,
        title=data.title,
        title_ru=data.title_ru,
        body=data.body,
        number=data.number,
        date=data.date,
        source_url=source_url,
        sources=citations,
        note=data.note,
        actor=actor.name,
        on_behalf_of=actor.on_behalf_of,
        recorded_at=now,
    )
    session.add(decision)
    try:
        await session.flush()
    except IntegrityError:  # the same code, recorded by a concurrent request
        raise Conflict(f"A decision with code {data.code!r} already exists.") from None
    record = DecisionRecord(decision)
    for step in data.transitions:
        event = record_status_change(
            session,
            locked[step.program],
            step.to_status,
            data.date,
            actor,
            note=data.note,
            source_url=source_url,
            sources=citations,
            decision=data.code,
            recorded_at=now,
        )
        record.events.append(EventRow(event, step.program))
    await session.flush()
    return record


def _events_of(codes: list[str] | None = None) -> Subquery:
    """(code, event_id) of every event the decisions `codes` (default: all) wrote or were
    attributed: two halves, each served by its own index, where an OR would scan every event."""
    written = select(Event.decision.label("code"), Event.id.label("event_id"))
    attributed = select(
        DecisionAttribution.decision.label("code"), DecisionAttribution.event_id.label("event_id")
    )
    if codes is None:
        written = written.where(Event.decision.is_not(None))
    else:
        written = written.where(Event.decision.in_(codes))
        attributed = attributed.where(DecisionAttribution.decision.in_(codes))
    return union_all(written, attributed).subquery("decision_events")


async def get_decision(session: AsyncSession, code: str) -> DecisionRecord:
    decision = await session.scalar(select(Decision).where(Decision.code == code))
    if decision is None:
        raise NotFound(f"There is no decision with code {code!r}.")
    made = _events_of([code])
    rows = await session.execute(
        events_with_codes().join(made, made.c.event_id == Event.id).order_by(Event.id)
    )
    return DecisionRecord(decision, [EventRow(*row) for row in rows])


def _decisions_moving_programmes_of(roadmap: str) -> Select[Any]:
    """The codes of the decisions that moved a programme of `roadmap`."""
    made = _events_of()
    in_roadmap = Program.roadmap_id == (
        select(Roadmap.id).where(Roadmap.code == roadmap).scalar_subquery()
    )
    return (
        select(made.c.code)
        .join(Event, Event.id == made.c.event_id)
        .join(Program, Program.id == Event.program_id)
        .where(in_roadmap)
    )


async def list_decisions(
    session: AsyncSession,
    *,
    after: tuple[date, int] | None,
    limit: int,
    body: str | None = None,
    roadmap: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[tuple[Decision, list[str]]]:
    """Decisions by date (then by when they were recorded), with the programmes each moved."""
    query = select(Decision).order_by(Decision.date, Decision.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(Decision.date, Decision.id) > tuple_(*after))
    if body is not None:
        # Case-insensitive (ASCII only on SQLite), so "supreme state council" finds it too.
        query = query.where(func.lower(Decision.body) == body.lower())
    if start is not None:
        query = query.where(Decision.date >= start)
    if end is not None:
        query = query.where(Decision.date <= end)
    if roadmap is not None:
        query = query.where(Decision.code.in_(_decisions_moving_programmes_of(roadmap)))
    decisions = list((await session.scalars(query)).all())
    if not decisions:
        await require_known(session, roadmap=roadmap)
        return []
    made = _events_of([decision.code for decision in decisions])
    rows = await session.execute(
        select(made.c.code, Program.code)
        .join(Event, Event.id == made.c.event_id)
        .join(Program, Program.id == Event.program_id)
        .order_by(Event.id)
    )
    moved: dict[str, list[str]] = {decision.code: [] for decision in decisions}
    for decision_code, program in rows:
        if program not in moved[decision_code]:
            moved[decision_code].append(program)
    return [(decision, moved[decision.code]) for decision in decisions]


async def attribute_decision(
    session: AsyncSession, decision: Decision, event_ids: list[int]
) -> None:
    """Record a decision whose events were recorded before decisions existed: the decision,
    and an appended attribution for each event (whose hash stays as it was)."""
    session.add(decision)
    await session.flush()
    session.add_all(
        DecisionAttribution(
            event_id=event_id, decision=decision.code, recorded_at=decision.recorded_at
        )
        for event_id in event_ids
    )
    await session.flush()
