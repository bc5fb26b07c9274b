"""The lean transition path (service.programs.lean_transitions) against the route's, on
PostgreSQL: the same requests, made on two copies of one database, one through the lean path
and one through the route, must leave the same events (hashes and all), the same programmes
and the same texts, and get the same answers."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clock import today_utc
from service.config import Settings
from service.db import create_engine
from service.main import create_app
from service.programs import lean_transitions
from service.programs.service import WRITE_LOCK_SEED
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
            # Every column, but the writer's transaction id, which differs between databases.
            events = await connection.execute(text("SELECT * FROM events ORDER BY id"))
            programs = await connection.execute(text("SELECT * FROM programs ORDER BY id"))
            texts = await connection.execute(
                text("SELECT event_id, body FROM event_texts ORDER BY event_id")
            )
            return {
                "events": [
                    tuple(value for name, value in row._mapping.items() if name != "txid")
                    for row in events
                ],
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


LOCK_HOLDER = "SELECT pg_advisory_lock(hashtextextended(:code, :seed))"


@pytest.fixture
async def lock_holder(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of its own, to hold a programme's write lock while a request comes."""
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


async def test_only_a_live_editors_key_queues_for_the_write_lock(
    database_url: str, api_tokens: Mapping[str, str], lock_holder: AsyncConnection
) -> None:
    """A viewer's, a revoked or a wrong key gets the route's refusal at once, even while an
    editor holds the programme's lock, rather than queueing among its writers."""
    await lock_holder.execute(
        text(LOCK_HOLDER), {"code": "monetary_policy", "seed": WRITE_LOCK_SEED}
    )
    app = create_app(Settings(database_url=database_url, db_lock_timeout_ms=2_000))
    wrong = api_tokens["editor"][:-4] + "AAAA"
    async with app.router.lifespan_context(app), in_process(app) as http:
        for token, status in (
            (api_tokens["viewer"], 403),
            (api_tokens["revoked"], 401),
            (wrong, 401),
        ):
            answer = await asyncio.wait_for(
                http.post(
                    f"{API}/monetary_policy/transitions",
                    json={"to_status": "withdrawn"},
                    headers=bearer(token),
                ),
                timeout=1.5,  # under the lock timeout: it did not wait for the lock
            )
            assert answer.status_code == status, answer.text


async def test_a_connection_that_dies_mid_transition_is_a_503(
    database_url: str, api_tokens: Mapping[str, str], lock_holder: AsyncConnection
) -> None:
    """The transition waits for the lock another connection holds; its backend is terminated
    meanwhile (a restart, a failover). The answer is a 503 with Retry-After, as on the
    route, not a 500; and the programme is unchanged."""
    await lock_holder.execute(text(LOCK_HOLDER), {"code": "lean_dies", "seed": WRITE_LOCK_SEED})
    app = create_app(Settings(database_url=database_url))
    async with (
        app.router.lifespan_context(app),
        in_process(app, bearer(api_tokens["editor"])) as http,
    ):
        created = await http.post(API, json={"code": "lean_dies", "title": "Dies"})
        assert created.status_code == 201
        posted = asyncio.create_task(
            http.post(f"{API}/lean_dies/transitions", json={"to_status": "coordinated"})
        )
        waiting = None
        for _ in range(100):
            waiting = await lock_holder.scalar(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            if waiting is not None:
                break
            await asyncio.sleep(0.05)
        assert waiting is not None, "the transition never waited for the lock"
        await lock_holder.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting})
        answer = await asyncio.wait_for(posted, timeout=10)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "retry-after" in answer.headers
        after = await http.get(f"{API}/lean_dies")
        assert after.json()["status"] == "draft"


async def test_what_the_lean_path_cannot_read_as_the_route_does_goes_to_the_route(
    client: httpx.AsyncClient,
) -> None:
    """Two Content-Types (the route reads the first), and a body over the limit that comes
    without a Content-Length: the route's answers, and nothing written."""
    before = (await client.get(f"{API}/monetary_policy")).headers["etag"]
    twice = await client.post(
        f"{API}/monetary_policy/transitions",
        content=b'{"to_status": "withdrawn"}',
        headers=[("content-type", "text/plain"), ("content-type", "application/json")],
    )
    assert twice.status_code == 422, twice.text

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"note": "' + b"x" * 70_000 + b'", "to_status": "withdrawn"}'

    oversized = await client.post(
        f"{API}/monetary_policy/transitions",
        content=streamed(),
        headers={"content-type": "application/json"},
    )
    assert oversized.status_code == 413, oversized.text
    assert oversized.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"{API}/monetary_policy")).headers["etag"] == before
