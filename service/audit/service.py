"""Appending to and reading from the event log."""

from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.chain import GENESIS_HASH, event_hash
from service.audit.kinds import EventKind
from service.audit.schemas import EventRead
from service.models.decisions import DecisionAttribution
from service.models.events import Event
from service.models.programs import Program


class EventSink(Protocol):
    """Where append_event puts an event: a session (the ORM writes it at flush), or the events
    a lean write puts on the driver itself (programs.lean_transitions)."""

    def add(self, instance: object, /) -> None: ...


def append_event(
    session: EventSink,
    *,
    program: Program,
    prev_hash: str | None,
    kind: EventKind,
    effective_date: date,
    actor: str,
    recorded_at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    on_behalf_of: str | None = None,
    note: str | None = None,
    source_url: str | None = None,
    sources: list[str] | None = None,
    changes: dict[str, Any] | None = None,
    decision: str | None = None,
) -> Event:
    """Record one change of `program`, chained to its previous event.

    The caller holds the programme's write lock (or has just inserted it) and passes the hash of
    its newest event (None for a new programme). This bumps the programme's version, so
    `version == seq` of the newest event always holds.
    """
    if (prev_hash is None) != (program.version == 0):
        # A chain has exactly one genesis link. Refusing here turns a lost head hash into a
        # failed request instead of a broken, append-only chain.
        raise RuntimeError(
            f"{program.code}: appending seq {program.version + 1} with "
            f"{'no previous hash' if prev_hash is None else 'a previous hash to a new chain'}"
        )
    program.version += 1
    program.updated_at = recorded_at
    content: dict[str, Any] = {
        "program": program.code,
        "seq": program.version,
        "kind": kind,
        "from_status": from_status,
        "to_status": to_status,
        "effective_date": effective_date,
        "recorded_at": recorded_at,
        "actor": actor,
        "on_behalf_of": on_behalf_of,
        "note": note,
        "source_url": source_url,
        "sources": sources if sources is not None else ([source_url] if source_url else []),
        "changes": changes,
        "decision": decision,
        "prev_hash": prev_hash or GENESIS_HASH,
    }
    content["hash"] = event_hash(content)
    del content["program"]
    event = Event(program_id=program.id, **content)
    session.add(event)
    return event


class EventRow(NamedTuple):
    """An event as reads show it: with its programme's code and, for an event recorded before
    decisions existed, the decision it was attributed to afterwards (models.decisions)."""

    event: Event
    program: str
    attributed_to: str | None = None


def event_read(event: Event, program_code: str, attributed_to: str | None = None) -> EventRead:
    return EventRead(
        id=event.id,
        program=program_code,
        seq=event.seq,
        kind=event.kind,
        from_status=event.from_status,
        to_status=event.to_status,
        effective_date=event.effective_date,
        recorded_at=event.recorded_at,
        actor=event.actor,
        on_behalf_of=event.on_behalf_of,
        note=event.note,
        source_url=event.source_url,
        sources=event.sources,
        changes=event.changes,
        decision=event.decision or attributed_to,
        decision_attributed=event.decision is None and attributed_to is not None,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def event_json(row: EventRow) -> str:
    """An event as JSON, as GET /events shows it: the one encoding live streams and webhooks
    send."""
    return event_read(*row).model_dump_json()


def events_with_codes() -> Select[Event, str, str | None]:
    """Events as EventRow reads them. An outer join to the attributions, not a subquery per
    event: the table is small, so PostgreSQL would scan it once per event."""
    return (
        select(Event, Program.code, DecisionAttribution.decision)
        .join(Program, Program.id == Event.program_id)
        .outerjoin(DecisionAttribution, DecisionAttribution.event_id == Event.id)
    )


async def program_history(
    session: AsyncSession, *, program_id: int, after_seq: int, limit: int
) -> list[EventRow]:
    query = (
        events_with_codes()
        .where(Event.program_id == program_id, Event.seq > after_seq)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [EventRow(*row) for row in await session.execute(query)]
