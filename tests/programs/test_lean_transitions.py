"""The lean transition path (service.programs.lean_transitions) against the route's, on
PostgreSQL: the same requests, made on two copies of one database, one through the lean path
and one through the route, must leave the same events (hashes and all), the same programmes
and the same texts, and get the same answers."""

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from service.clock import today_utc
from service.config import Settings
from service.db import create_engine
from service.main import create_app
from service.programs import lean_transitions
from tests.conftest import in_process
from tests.support.builders import bearer
from tests.support.databases import clone_database, drop_database, is_postgresql

pytestmark = pytest.mark.skipif(not is_postgresql(), reason="the lean path is PostgreSQL's")

API = "/api/v1/programs"
TODAY = today_utc()


class Step:
    """One request of the script: what is sent, and whether the lean path should take it."""

    def __init__(self, path: str, body: Any, *, lean: bool, headers: Mapping[str, str] = {}):
        self.path, self.body, self.lean, self.headers = path, body, lean, dict(headers)


def script(etag_of: Callable[[str], str], tokens: Mapping[str, str]) -> Iterator[Step]:
    """Steps for a new programme with an open milestone (lean_check) and a seeded one, made as
    the script goes, so that If-Match can be right or stale."""
    new = f"{API}/lean_check/transitions"
    seeded = f"{API}/monetary_policy/transitions"
    yield Step(
        new,
        {
            "to_status": "coordinated",
            "note": "Coordinated by the presidents",
            "actor": "Secretariat",
            "sources": ["https://example.org/a", "Minutes of the meeting"],
        },
        lean=True,
    )
    yield Step(new, {"to_status": "completed"}, lean=True)  # 409: not a step from coordinated
    yield Step(
        new,
        {"to_status": "draft", "effective_date": (TODAY - timedelta(days=1)).isoformat()},
        lean=True,
    )  # 422: before the status it leaves
    yield Step(
        new,
        {"to_status": "draft", "effective_date": (TODAY + timedelta(days=2)).isoformat()},
        lean=True,
    )  # 422: in the future
    yield Step(new, {"to_status": "draft"}, lean=True, headers={"If-Match": '"v0"'})  # 412
    yield Step(
        new,
        {"to_status": "draft", "source_url": "https://example.org/back"},
        lean=True,
        headers={"If-Match": etag_of("lean_check")},
    )
    yield Step(new, {"to_status": "coordinated", "note": "Again"}, lean=True)
    yield Step(new, {"to_status": "nonsense"}, lean=False)  # the route's 422
    yield Step(
        new,
        {"to_status": "ministerially_approved"},
        lean=False,
        headers={"Authorization": f"Bearer {tokens['viewer']}"},
    )  # the route's 403
    yield Step(
        new,
        {"to_status": "ministerially_approved"},
        lean=False,
        headers={"Authorization": "Bearer rmk_unknown"},
    )  # the route's 401
    yield Step(f"{API}/no_such_programme/transitions", {"to_status": "coordinated"}, lean=True)
    yield Step(
        new,
        {"to_status": "ministerially_approved", "actor": "Council of Ministers"},
        lean=True,
        headers={"If-Match": etag_of("lean_check")},
    )
    # Closing a programme with an open milestone: its figures are read again (missed, not
    # planned), from the database as the change left it.
    yield Step(new, {"to_status": "withdrawn", "note": "Closed"}, lean=True)
    yield Step(new, {"to_status": "draft"}, lean=True)  # 409: a closed programme stays closed
    yield Step(seeded, {"to_status": "withdrawn"}, lean=True)  # 409: completed in the seed


def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths take the time of a change from service.programs.service.utc_now; a clock
    that ticks a second per call makes both runs record the same times, hence the same
    hashes."""
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ticks = itertools.count()

    def now() -> datetime:
        return start + timedelta(seconds=next(ticks))

    for module in ("service.programs.service", "service.milestones.service"):
        monkeypatch.setattr(f"{module}.utc_now", now)


async def run_script(
    app: FastAPI, tokens: Mapping[str, str], *, through_route: bool
) -> list[tuple[int, Any, str | None]]:
    answers: list[tuple[int, Any, str | None]] = []
    async with in_process(app, bearer(tokens["editor"])) as http:
        created = await http.post(API, json={"code": "lean_check", "title": "Lean check"})
        assert created.status_code == 201
        due = (TODAY + timedelta(days=30)).isoformat()
        milestone = {"title": "Open", "due_date": due}
        assert (await http.post(f"{API}/lean_check/milestones", json=milestone)).status_code == 201

        async def etag_now(code: str) -> str:
            return (await http.get(f"{API}/{code}")).headers["etag"]

        etags: dict[str, str] = {}

        def etag_of(code: str) -> str:
            return etags[code]

        etags["lean_check"] = await etag_now("lean_check")
        for step in script(etag_of, tokens):  # each step is made after the last one's answer
            params = {"dry_run": "false"} if through_route else None
            answer = await http.post(step.path, json=step.body, headers=step.headers, params=params)
            body = answer.json()
            if answer.headers["content-type"] == "application/problem+json":
                body.pop("instance", None)
            answers.append((answer.status_code, body, answer.headers.get("etag")))
            etags["lean_check"] = await etag_now("lean_check")
    return answers


async def stored(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            events = await connection.execute(
                text(
                    "SELECT id, program_id, seq, kind, from_status, to_status, effective_date, "
                    "recorded_at, actor, on_behalf_of, note, source_url, sources::text, "
                    "changes::text, decision, prev_hash, hash FROM events ORDER BY id"
                )
            )
            programs = await connection.execute(
                text(
                    "SELECT id, code, status, status_effective_date, version, updated_at, "
                    "created_at FROM programs ORDER BY id"
                )
            )
            texts = await connection.execute(
                text("SELECT event_id, body FROM event_texts ORDER BY event_id")
            )
            return {
                "events": [tuple(row) for row in events],
                "programs": [tuple(row) for row in programs],
                "event_texts": [tuple(row) for row in texts],
            }
    finally:
        await engine.dispose()


@pytest.fixture
async def second_database_url(seeded_template: str, tmp_path: Path) -> AsyncIterator[str]:
    url = await clone_database(seeded_template, tmp_path / "second")
    yield url
    await drop_database(url)


async def test_the_lean_path_and_the_route_record_the_same_events_and_answer_alike(
    database_url: str,
    second_database_url: str,
    api_tokens: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answered_by_lean: list[str] = []  # the programme of each request the lean path answered
    answer = lean_transitions._answer

    async def counted(scope: Any, lean: Any, body: bytes) -> Any:
        answered = await answer(scope, lean, body)
        if answered is not None:
            answered_by_lean.append(lean.code)
        return answered

    monkeypatch.setattr(lean_transitions, "_answer", counted)
    runs: dict[bool, tuple[list[Any], dict[str, list[tuple[Any, ...]]]]] = {}
    for through_route, url in ((False, database_url), (True, second_database_url)):
        frozen_clock(monkeypatch)
        answered_by_lean.clear()
        app = create_app(Settings(database_url=url))
        async with app.router.lifespan_context(app):
            answers = await run_script(app, api_tokens, through_route=through_route)
        expected = (
            []
            if through_route
            else [
                step.path.split("/")[-2]
                for step in script(lambda _code: "", api_tokens)
                if step.lean
            ]
        )
        assert answered_by_lean == expected
        runs[through_route] = (answers, await stored(url))

    (lean_answers, lean_stored), (route_answers, route_stored) = runs[False], runs[True]
    assert [a[0] for a in lean_answers] == [
        201,
        409,
        422,
        422,
        412,
        201,
        201,
        422,
        403,
        401,
        404,
        201,
        201,
        409,
        409,
    ]
    for index, (lean_answer, route_answer) in enumerate(
        zip(lean_answers, route_answers, strict=True)
    ):
        assert lean_answer == route_answer, f"step {index}"
    assert lean_stored["programs"] == route_stored["programs"]
    assert lean_stored["events"] == route_stored["events"]
    assert lean_stored["event_texts"] == route_stored["event_texts"]
    # The closing transition answered with its milestones missed, read after the change.
    opened, closed = lean_answers[11][1]["program"], lean_answers[12][1]["program"]
    assert opened["progress"]["milestones_missed"] == 0
    assert closed["status"] == "withdrawn"
    assert closed["progress"]["milestones_missed"] == 1
