"""Loading the bundled roadmap files (or any file of the same shape) into the database.

A programme's first event in a file (to `draft`) is its `created` event; the rest of its
history is replayed through `transition_program`, so the seed obeys the same workflow rules as
the API. An event whose `program` is "*" applies to every programme of its file. Loading is
idempotent: a roadmap or programme that already exists is left as it is; milestones and
progress reports are loaded once per roadmap (remembered in seed_loads).

When the bundled facts are corrected, a database seeded earlier is brought in step by
appending, never by editing what it recorded: each correction is a part of its own, applied
once (so an editor's later change is never undone on the next start). A milestone's corrected
`set_on` is a `milestone_updated` event effective on that date; a corrected progress report is a
new report that names the one it corrects. A later correction of the files adds a new part.

The acts behind the history's package-wide steps (decisions.json: the presidents' coordination,
the Council of Ministers, Decree No. 6, the fulfilment of 29 January 2024) are recorded as
decisions after the history, on a fresh database and an upgraded one alike: each act's events
are attributed to it by appended rows, so no recorded event changes.
"""

import json
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.kinds import EventKind
from service.auth.reserved import SEED_ACTOR_NAME
from service.clock import utc_now
from service.decisions.service import attribute_decision
from service.milestones.schemas import MilestoneCreate, MilestoneUpdate
from service.milestones.service import add_milestone, update_milestone
from service.models.decisions import Decision
from service.models.events import Event
from service.models.milestones import Milestone
from service.models.programs import Program
from service.models.roadmaps import ProgressReport, Roadmap, SeedLoad
from service.programs.schemas import ProgramCreate, TransitionRequest
from service.programs.service import Actor, create_program, transition_program
from service.roadmaps.schemas import ProgressReportCreate
from service.roadmaps.service import add_progress
from service.rules.citations import first_url
from service.rules.workflow import INITIAL_STATUS, Status

# No key may take this name (auth.reserved), so the seeded facts cannot be forged.
SEED_ACTOR = Actor(name=SEED_ACTOR_NAME)


@dataclass
class SeedReport:
    roadmaps_created: list[str] = field(default_factory=list)
    programs_created: list[str] = field(default_factory=list)
    milestones_added: int = 0
    progress_reports_added: int = 0
    milestones_corrected: int = 0
    progress_reports_corrected: int = 0
    decisions_added: int = 0


def bundled_seed_files() -> list[Path]:
    folder = resources.files("service.seed") / "data"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".json"))


def read_seed_file(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "roadmap" not in document:
        raise ValueError(f"{path}: not a roadmap file (no 'roadmap' object)")
    return document


def _events_by_program(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    codes = [p["code"] for p in document.get("programs", [])]
    history: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for entry in document.get("events", []):
        targets = codes if entry["program"] == "*" else [entry["program"]]
        for code in targets:
            if code not in history:
                raise ValueError(f"event for unknown programme {code!r}")
            history[code].append(entry)
    return history


async def _ensure_roadmap(session: AsyncSession, data: dict[str, Any]) -> tuple[Roadmap, bool]:
    roadmap = await session.scalar(select(Roadmap).where(Roadmap.code == data["code"]))
    if roadmap is not None:
        return roadmap, False
    roadmap = Roadmap(
        code=data["code"],
        title=data["title"],
        title_ru=data.get("title_ru"),
        period=data.get("period"),
        official_program_count=data.get("official_program_count"),
        note=data.get("note"),
        sources=data.get("sources", []),
        created_at=utc_now(),
    )
    session.add(roadmap)
    await session.flush()
    return roadmap, True


async def _create_program(
    session: AsyncSession, roadmap: Roadmap, data: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    """The programme through the API's own create path, then its history through the
    workflow, each step with its citations."""
    if not history or history[0]["to_status"] != INITIAL_STATUS.value:
        raise ValueError(f"programme {data['code']!r}: its first event must be to 'draft'")
    creation, *changes = history
    fields = {name: data[name] for name in _PROGRAM_FIELDS if name in data}
    request = ProgramCreate(
        **fields,
        roadmap=roadmap.code,
        note=creation.get("note"),
        source_url=first_url(creation.get("sources", [])),
    )
    await create_program(
        session,
        request,
        SEED_ACTOR,
        created_on=date.fromisoformat(creation["effective_date"]),
        sources=creation.get("sources", []),
        program_sources=data.get("sources", []),
    )
    for change in changes:
        transition = TransitionRequest(
            to_status=Status(change["to_status"]),
            effective_date=date.fromisoformat(change["effective_date"]),
            note=change.get("note"),
            source_url=first_url(change.get("sources", [])),
        )
        await transition_program(
            session, request.code, transition, SEED_ACTOR, sources=change.get("sources", [])
        )


_PROGRAM_FIELDS = (
    "code", "number", "title", "title_ru", "title_official", "sector", "lead_bodies", "summary",
)  # fmt: skip


async def _load_milestones(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    for entry in document.get("milestones", []):
        sources = entry.get("sources", [])
        data = MilestoneCreate(
            title=entry["title"],
            due_date=entry.get("due_date"),
            done_date=entry.get("done_date"),
            set_on=entry.get("set_on"),
            source_url=first_url(sources),
            note=entry.get("note"),
        )
        await add_milestone(session, entry["program"], data, SEED_ACTOR, sources=sources)
        report.milestones_added += 1


def _progress_report(entry: dict[str, Any], corrects: int | None = None) -> ProgressReportCreate:
    return ProgressReportCreate(
        date=entry["date"],
        measures_done_pct=entry["measures_done_pct"],
        measures_total=entry.get("measures_total"),
        programs_completed=entry.get("programs_completed"),
        statement=entry["statement"],
        source_url=first_url(entry.get("sources", [])),
        corrects=corrects,
    )


async def _load_progress_reports(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    code = document["roadmap"]["code"]
    for entry in document.get("progress_reports", []):
        await add_progress(
            session,
            code,
            _progress_report(entry),
            recorded_by=SEED_ACTOR.name,
            sources=entry.get("sources", []),
        )
        report.progress_reports_added += 1


async def _correct_milestone_set_on(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    """Seeded milestones were once dated the day the database was seeded; the files now say
    which act set each one (`set_on`)."""
    for entry in document.get("milestones", []):
        if entry.get("set_on") is None:
            continue
        set_on = date.fromisoformat(entry["set_on"])
        milestone = await session.scalar(
            select(Milestone)
            .join(Program, Program.id == Milestone.program_id)
            .where(Program.code == entry["program"], Milestone.title == entry["title"])
        )
        if milestone is None or milestone.set_on == set_on:
            continue
        sources = entry.get("sources", [])
        # The same source_url as the milestone's own (seeded from the same entry), so it is
        # not a change; it gives the event its source.
        data = MilestoneUpdate(set_on=set_on, source_url=first_url(sources))
        await update_milestone(
            session, entry["program"], milestone.id, data, SEED_ACTOR, sources=sources
        )
        report.milestones_corrected += 1


async def _correct_progress_reports(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    """A seeded report that the files now state differently is corrected by a new report."""
    code = document["roadmap"]["code"]
    seeded = (
        await session.scalars(
            select(ProgressReport)
            .join(Roadmap, Roadmap.id == ProgressReport.roadmap_id)
            .where(Roadmap.code == code, ProgressReport.recorded_by == SEED_ACTOR.name)
            .order_by(ProgressReport.id)
        )
    ).all()
    corrected = {r.corrects_id for r in seeded if r.corrects_id is not None}
    current = {r.date: r for r in seeded if r.id not in corrected}
    for entry in document.get("progress_reports", []):
        wanted = _progress_report(entry)
        was = current.get(wanted.date)
        if was is None or _report_fields(was) == wanted.model_dump(exclude={"corrects"}):
            continue
        await add_progress(
            session,
            code,
            _progress_report(entry, corrects=was.id),
            recorded_by=SEED_ACTOR.name,
            sources=entry.get("sources", []),
        )
        report.progress_reports_corrected += 1


def _report_fields(report: ProgressReport) -> dict[str, Any]:
    return {
        name: getattr(report, name)
        for name in (
            "date",
            "measures_done_pct",
            "measures_total",
            "programs_completed",
            "statement",
            "source_url",
        )
    }


def _bundled_acts(roadmap_code: str) -> list[dict[str, Any]]:
    text = (resources.files("service.seed") / "decisions.json").read_text(encoding="utf-8")
    acts: list[dict[str, Any]] = json.loads(text).get(roadmap_code, [])
    return acts


async def _attribute_decisions(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    """Each act of decisions.json, with the seeded status changes it made attributed to it."""
    history = _events_by_program(document)
    for act in _bundled_acts(document["roadmap"]["code"]):
        if await session.scalar(select(Decision.id).where(Decision.code == act["code"])):
            continue  # recorded already, by hand
        made = [
            (code, entry)
            for code, entries in history.items()
            for entry in entries[1:]  # the first is the programme's creation
            if entry["effective_date"] == act["date"]
            and entry["to_status"] in act["to_status"]
            and (entry["program"] == "*" or not act["all_programmes"])
        ]
        day = date.fromisoformat(act["date"])
        seeded = await session.execute(
            select(Event.id, Program.code, Event.to_status)
            .join(Program, Program.id == Event.program_id)
            .where(
                Program.code.in_({code for code, _entry in made}),
                Event.kind == EventKind.STATUS_CHANGED,
                Event.actor == SEED_ACTOR.name,
                Event.effective_date == day,
                Event.decision.is_(None),
            )
            .order_by(Event.id)
        )
        wanted = {(code, entry["to_status"]) for code, entry in made}
        event_ids = [id_ for id_, code, status in seeded if (code, status) in wanted]
        sources = list(dict.fromkeys(s for _code, entry in made for s in entry.get("sources", [])))
        decision = Decision(
            code=act["code"],
            title=act["title"],
            body=act["body"],
            number=act["number"],
            date=day,
            source_url=first_url(sources),
            sources=sources,
            actor=SEED_ACTOR.name,
            recorded_at=utc_now(),
        )
        await attribute_decision(session, decision, event_ids)
        report.decisions_added += 1


# Parts of a roadmap file loaded once each, in this order, and remembered in seed_loads: a part
# that a later version of the service learns to load is loaded into older databases on start.
# On a database seeded from the current files the corrections find nothing to correct.
_PARTS = {
    "milestones": _load_milestones,
    "progress_reports": _load_progress_reports,
    "milestone_set_on": _correct_milestone_set_on,
    "progress_report_corrections": _correct_progress_reports,
    "decisions": _attribute_decisions,
}


async def _load_missing_parts(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    code = document["roadmap"]["code"]
    loaded = set(
        (await session.scalars(select(SeedLoad.part).where(SeedLoad.roadmap_code == code))).all()
    )
    for part, load in _PARTS.items():
        if part in loaded:
            continue
        await load(session, document, report)
        session.add(SeedLoad(roadmap_code=code, part=part, loaded_at=utc_now()))
        await session.flush()


async def load_seed_document(
    session: AsyncSession, document: dict[str, Any], report: SeedReport
) -> None:
    roadmap, created = await _ensure_roadmap(session, document["roadmap"])
    if created:
        report.roadmaps_created.append(roadmap.code)
    history = _events_by_program(document)
    existing = set(
        (await session.scalars(select(Program.code).where(Program.code.in_(history)))).all()
    )
    for data in document.get("programs", []):
        if data["code"] in existing:
            continue
        await _create_program(session, roadmap, data, history[data["code"]])
        report.programs_created.append(data["code"])
    await _load_missing_parts(session, document, report)


async def load_missing_parts_of_bundled_roadmaps(session: AsyncSession) -> SeedReport:
    """For a database seeded by an earlier version: load what the bundled files hold for its
    roadmaps and was not loaded yet (milestones, progress reports). Roadmaps it lacks stay out."""
    report = SeedReport()
    present = set((await session.scalars(select(Roadmap.code))).all())
    for path in bundled_seed_files():
        document = read_seed_file(path)
        if document["roadmap"]["code"] in present:
            await _load_missing_parts(session, document, report)
    return report


async def load_seed_files(session: AsyncSession, paths: list[Path]) -> SeedReport:
    """Load every file in one transaction (the caller commits): all of it or none."""
    report = SeedReport()
    for path in paths:
        await load_seed_document(session, read_seed_file(path), report)
    return report


async def database_is_empty(session: AsyncSession) -> bool:
    return await session.scalar(select(Roadmap.id).limit(1)) is None
