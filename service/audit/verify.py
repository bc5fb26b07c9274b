"""Recomputing every chain, and the digest an outside party can keep to prove nothing changed.

On PostgreSQL the feed and the exports serve each event as the text its triggers wrote when it
was appended or attributed to a decision (models.events.EventText), not as the event itself:
so verifying also recomputes each text from its event, by the database's own definition of it
(migration 0010's view), and names any that differs or is missing. Otherwise a text edited
behind the service's back would be served in every export while every chain still verified."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, column, func, or_, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import rendered
from service.audit.chain import broken_links, chains_digest
from service.audit.feed import START, feed_end
from service.db import read_snapshot
from service.models.events import Event, EventText
from service.models.programs import Program

_HASHED_COLUMNS = (
    Event.id,
    Event.program_id,
    Event.seq,
    Event.kind,
    Event.from_status,
    Event.to_status,
    Event.effective_date,
    Event.recorded_at,
    Event.actor,
    Event.on_behalf_of,
    Event.note,
    Event.source_url,
    Event.sources,
    Event.changes,
    Event.decision,
    Event.prev_hash,
    Event.hash,
)


# Migration 0010's view: each event's text as its triggers write it, computed from the event.
_TEXT_OF_EVENT = table(
    "event_text_source", column("event_id"), column("body"), column("cursor"), column("csv")
)
_NO_TEXT = "no text is kept for it: the feed and the exports leave it out"
_OTHER_TEXT = "the text the feed and the exports serve for it is not the event's"
# Per event, correlated, so the chains' streamed read stays one pass over (program_id, seq) and
# each fetch computes only its own rows' texts: NULL when the kept text is the event's, else
# the reason.
_TEXT_MISMATCH = (
    select(case((EventText.event_id.is_(None), _NO_TEXT), else_=_OTHER_TEXT))
    .select_from(_TEXT_OF_EVENT)
    .outerjoin(EventText, EventText.event_id == _TEXT_OF_EVENT.c.event_id)
    .where(
        _TEXT_OF_EVENT.c.event_id == Event.id,
        or_(
            EventText.event_id.is_(None),
            EventText.body.is_distinct_from(_TEXT_OF_EVENT.c.body),
            EventText.cursor.is_distinct_from(_TEXT_OF_EVENT.c.cursor),
            EventText.csv.is_distinct_from(_TEXT_OF_EVENT.c.csv),
        ),
    )
    .scalar_subquery()
    .label("text_mismatch")
)


@dataclass
class Mismatch:
    program: str
    event_id: int | None
    reason: str


@dataclass
class VerifyReport:
    programs_checked: int = 0
    events_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


async def _events_by_program(
    session: AsyncSession, codes: dict[int, str]
) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """Each programme's events in seq order, streamed so memory holds one chain at a time; on
    PostgreSQL with each one's `text_mismatch`."""
    texts = [_TEXT_MISMATCH] if rendered.supported(session) else []
    query = (
        select(*_HASHED_COLUMNS, *texts)
        .order_by(Event.program_id, Event.seq)
        .execution_options(yield_per=2000)
    )
    current: int | None = None
    chain: list[dict[str, Any]] = []
    async for row in await session.stream(query):
        event = dict(row._mapping)
        if event["program_id"] != current:
            if current is not None:
                yield current, chain
            current, chain = event["program_id"], []
        event["program"] = codes[event["program_id"]]
        chain.append(event)
    if current is not None:
        yield current, chain


async def verify_chains(session: AsyncSession) -> VerifyReport:
    """Check every chain, each event's text where the chain holds (PostgreSQL), and that each
    programme's row agrees with its history, all as of one committed state: a new session's
    snapshot, or the transaction `session` is in (an import checking what it wrote)."""
    if not session.in_transaction():
        await read_snapshot(session)
    programs = {p.id: p for p in (await session.scalars(select(Program))).all()}
    codes = {pid: p.code for pid, p in programs.items()}
    report = VerifyReport(programs_checked=len(programs))
    seen: set[int] = set()
    async for program_id, chain in _events_by_program(session, codes):
        seen.add(program_id)
        report.events_checked += len(chain)
        code = codes[program_id]
        broken = broken_links(chain)
        if broken:
            report.mismatches += [Mismatch(code, event_id, reason) for event_id, reason in broken]
            continue
        report.mismatches += [
            Mismatch(code, event["id"], event["text_mismatch"])
            for event in chain
            if event.get("text_mismatch") is not None
        ]
        program = programs[program_id]
        if program.version != len(chain):
            report.mismatches.append(
                Mismatch(
                    code, chain[-1]["id"], f"version {program.version} but {len(chain)} events"
                )
            )
        status_events = [e for e in chain if e["to_status"] is not None]
        if status_events and status_events[-1]["to_status"] != program.status:
            report.mismatches.append(
                Mismatch(
                    code,
                    status_events[-1]["id"],
                    f"status {program.status!r} but the history ends at "
                    f"{status_events[-1]['to_status']!r}",
                )
            )
    for program_id in programs.keys() - seen:
        report.mismatches.append(Mismatch(codes[program_id], None, "programme has no events"))
    report.mismatches.sort(key=lambda m: m.program)
    return report


@dataclass(frozen=True)
class Digest:
    digest: str
    last_event_id: int | None


async def _heads_up_to(session: AsyncSession, position: tuple[int, int]) -> dict[str, str]:
    txid, event_id = position
    at_or_before = tuple_(Event.txid, Event.id) <= tuple_(txid, event_id)
    newest = (
        select(Event.program_id, func.max(Event.seq)).where(at_or_before).group_by(Event.program_id)
    )
    rows = await session.execute(
        select(Program.code, Event.hash)
        .join(Program, Program.id == Event.program_id)
        .where(tuple_(Event.program_id, Event.seq).in_(newest))
    )
    return {code: head for code, head in rows}


async def digest_as_of(session: AsyncSession, last_event_id: int | None = None) -> Digest:
    """The digest over every chain's head as of an event (default: the newest settled one)."""
    if last_event_id is None:
        position = await feed_end(session)
        if position == START:
            return Digest(chains_digest({}), None)
    else:
        row = (
            await session.execute(select(Event.txid, Event.id).where(Event.id == last_event_id))
        ).first()
        if row is None:
            raise LookupError(f"there is no event {last_event_id}")
        position = (row[0], row[1])
    heads = await _heads_up_to(session, position)
    return Digest(chains_digest(heads), position[1])


async def find_digest(session: AsyncSession, digest: str) -> int | None:
    """The event as of which the chains had `digest`, found by replaying the feed; or None.

    For a digest kept without its last_event_id. It costs one pass over the history: give the
    event id (`roadmap verify --digest D --at N`) when it is known.
    """
    heads: dict[str, str] = {}
    newest_seq: dict[str, int] = {}
    if digest == chains_digest(heads):
        return 0
    query = (
        select(Event.id, Program.code, Event.seq, Event.hash)
        .join(Program, Program.id == Event.program_id)
        .order_by(Event.txid, Event.id)
        .execution_options(yield_per=5000)
    )
    async for event_id, code, seq, head in await session.stream(query):
        if seq > newest_seq.get(code, 0):
            newest_seq[code], heads[code] = seq, head
        if chains_digest(heads) == digest:
            return int(event_id)
    return None
