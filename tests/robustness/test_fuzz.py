"""Hostile input at every route: any Unicode in any body field, path segment, query value or
header; cursors the service never issued; dates and numbers at the ends of their ranges;
unknown, repeated and dangling query parameters; HEAD, CORS preflights, oversized headers.

Whatever comes in, the answer is never a 5xx, every refusal is an application/problem+json
document, and a refused write leaves every record exactly as it was. The routes, parameters and
body fields come from the OpenAPI document, so a new one is fuzzed too. The values are in
tests/support/strategies.py.
"""

import itertools
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from http.client import HTTPConnection
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clock import today_utc
from service.config import Settings
from service.main import create_app
from service.models import Base
from service.pagination import encode_cursor
from tests.support.builders import API, bearer, create_program
from tests.support.hypothesis_profiles import examples
from tests.support.servers import LiveServer
from tests.support.strategies import (
    NAMED_CURSORS,
    could_be_issued,
    cursor_of,
    cursors,
    extreme_days,
    field_values,
    header_values,
    hostile_moments,
    hostile_numbers,
    json_bytes,
    must_refuse_field,
    must_refuse_parameter,
    parameter_names,
    percent_encoded,
    query_string,
    query_values,
    safe_header_text,
    sendable_as_header,
    url_text,
)

PROBLEM = "application/problem+json"
STREAM = f"{API}/events/stream"
DOCUMENT: dict[str, Any] = create_app(Settings()).openapi()


def fuzz(max_examples: int) -> settings:
    # One client and one database per test, shared by its examples: each example checks only
    # what it changed itself, so it needs no fresh database. The quick loop tries fewer.
    return settings(
        max_examples=examples(max_examples),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --- the routes, as the OpenAPI document declares them ------------------------------------------


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@dataclass(frozen=True, eq=False)  # one object per operation: equal only to itself
class Operation:
    method: str
    path: str
    parameters: dict[tuple[str, str], dict[str, Any]]  # (in, name) -> schema
    body: dict[str, dict[str, Any]]  # field -> schema; empty without a body

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # in falsifying examples
        printer.text(f"{self.method} {self.path}")

    def names(self, where: str) -> list[str]:
        return [name for place, name in self.parameters if place == where]


def _operations() -> Iterator[Operation]:
    for path, methods in DOCUMENT["paths"].items():
        for method, spec in methods.items():
            content = spec.get("requestBody", {}).get("content", {})
            body = resolve(content["application/json"]["schema"]) if content else {}
            declared = spec.get("parameters", [])
            parameters = {(p["in"], p["name"]): resolve(p["schema"]) for p in declared}
            yield Operation(method.upper(), path, parameters, body.get("properties", {}))


OPERATIONS = tuple(_operations())
# An in-process client reads each answer whole, and the live stream never ends: the stream is
# called on a real server (the live tests at the end).
IN_PROCESS = tuple(op for op in OPERATIONS if op.path != STREAM)
READS = tuple(op for op in IN_PROCESS if op.method == "GET")
BODY_WRITES = tuple(op for op in IN_PROCESS if op.body)
PATH_PARAMETERS = tuple((op, name) for op in IN_PROCESS for name in op.names("path"))
CURSORS = ("cursor", "after")
CURSOR_PARAMETERS = tuple((op, n) for op in READS for n in op.names("query") if n in CURSORS)
QUERY_PARAMETERS = tuple((op, n) for op in READS for n in op.names("query") if n not in CURSORS)


def operation(method: str, path: str) -> Operation:
    return next(op for op in OPERATIONS if (op.method, op.path) == (method, f"{API}{path}"))


def parameter(method: str, path: str, name: str) -> tuple[Operation, str]:
    return operation(method, path), name


@dataclass(frozen=True)
class Targets:
    """What the routes act on: a programme of the test's own with one milestone, a seeded
    roadmap, and a key that nothing else uses."""

    program: str
    milestone: int
    webhook: int
    roadmap: str = "union-state-2021-2023"
    key: str = "fuzz-key"

    def path_value(self, path: str, name: str) -> str:
        if name == "code":
            return self.roadmap if path.startswith(f"{API}/roadmaps") else self.program
        return {
            "milestone_id": str(self.milestone),
            "name": self.key,
            "webhook_id": str(self.webhook),
        }[name]


# What a read needs besides the parameter under test: timelines need a start, and known_at
# needs as_of where there is one.
COMPANIONS = {"start": "2024-01-01", "as_of": "2024-06-30"}


def url_for(
    op: Operation,
    targets: Targets,
    *,
    path: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
) -> str:
    """The operation's URL on the targets, with `path` values instead where given, and the
    `query` completed with what the route needs."""
    address = op.path
    for name in op.names("path"):
        value = path[name] if path and name in path else targets.path_value(op.path, name)
        address = address.replace(f"{{{name}}}", percent_encoded(value))
    query = list(query or [])
    given_names = {name for name, _ in query}
    for name, value in COMPANIONS.items():
        needed = name == "start" or "known_at" in given_names
        if needed and name in op.names("query") and name not in given_names:
            query.append((name, value))
    return f"{address}?{query_string(query)}" if query else address


_unique = itertools.count()


def valid_body(op: Operation, world: "World", targets: Targets) -> dict[str, Any]:
    """A body the operation accepts, so that a refusal is down to the value under test."""
    n = next(_unique)
    draft = world.status_of(targets.program) == "draft"
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/programs"): {"code": f"fuzz-{n}", "title": "Fuzz"},
        ("PATCH", "/programs/{code}"): {"summary": f"fuzz {n}"},
        ("POST", "/programs/{code}/transitions"): {
            "to_status": "coordinated" if draft else "draft"
        },
        ("POST", "/programs/{code}/milestones"): {"title": f"fuzz {n}"},
        ("PATCH", "/programs/{code}/milestones/{milestone_id}"): {"note": f"fuzz {n}"},
        ("POST", "/roadmaps"): {"code": f"fuzz-{n}", "title": "Fuzz"},
        ("POST", "/roadmaps/{code}/progress"): {
            "date": "2024-01-01",
            "measures_done_pct": 1,
            "statement": f"fuzz {n}",
        },
        ("POST", "/keys"): {"name": f"fuzz-{n}", "role": "viewer"},
        ("POST", "/webhooks"): {"url": f"https://fuzz-{n}.example/hook"},
        ("PATCH", "/webhooks/{webhook_id}"): {"description": f"fuzz {n}"},
        ("POST", "/webhooks/{webhook_id}/redeliver"): {"event": encode_cursor(1, 1)},
        ("POST", "/programs/{code}/corrections"): {"event": 1, "reason": f"fuzz {n}"},
        ("POST", "/decisions"): {
            "code": f"fuzz-{n}",
            "title": "Fuzz",
            "body": "Fuzz",
            "date": today_utc().isoformat(),
            "transitions": [
                {"program": targets.program, "to_status": "coordinated" if draft else "draft"}
            ],
        },
    }
    return bodies[(op.method, op.path.removeprefix(API))]


# --- what a refused write must leave alone ------------------------------------------------------

# Not a client's record: a refused request with an Idempotency-Key is stored to be replayed,
# by design (service/unit_of_work.py), and a key's last use is a hint refreshed by any request.
UNRECORDED_TABLES = {"idempotency_keys"}
UNRECORDED_COLUMNS = {"last_used_at"}


@dataclass(frozen=True)
class World:
    """Everything a write could change: the audit digest and the programme list as the API
    shows them, and every stored record."""

    digest: dict[str, Any]
    programs: list[dict[str, Any]]
    records: dict[str, list[tuple[Any, ...]]]

    def status_of(self, code: str) -> str | None:
        return next((p["status"] for p in self.programs if p["code"] == code), None)

    def changes(self, later: "World") -> list[str]:
        changed = ["digest"] if self.digest != later.digest else []
        changed += ["programme list"] if self.programs != later.programs else []
        return changed + [
            f"table {name}" for name, rows in self.records.items() if rows != later.records[name]
        ]


async def stored_records(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    records = {}
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in UNRECORDED_TABLES:
                continue
            columns = [c for c in table.columns if c.name not in UNRECORDED_COLUMNS]
            rows = await connection.execute(select(*columns).order_by(*table.primary_key))
            records[table.name] = [tuple(row) for row in rows]
    return records


async def observe(http: httpx.AsyncClient, app: FastAPI) -> World:
    digest = await http.get(f"{API}/audit/digest")
    programs = await http.get(f"{API}/programs", params={"limit": 500})
    assert digest.status_code == programs.status_code == 200, (digest.text, programs.text)
    return World(digest.json(), programs.json()["items"], await stored_records(app.state.engine))


# --- what every answer must be ------------------------------------------------------------------


def shown(response: httpx.Response) -> str:
    request = f"{response.request.method} {str(response.request.url)[:300]}"
    answer = f"{response.status_code} {response.headers.get('content-type')}"
    return f"{request} -> {answer}: {response.text[:500]!r}"


def assert_answered(response: httpx.Response) -> None:
    """Never a 5xx; a 4xx is a problem document (a HEAD answer has no body to look at)."""
    assert response.status_code < 500, shown(response)
    if response.status_code >= 400:
        assert response.headers.get("content-type") == PROBLEM, shown(response)
        if response.request.method != "HEAD":
            problem = response.json()
            assert {"type", "title", "status", "detail"} <= problem.keys(), shown(response)
            assert problem["status"] == response.status_code, shown(response)


def assert_refused(response: httpx.Response) -> None:
    assert_answered(response)
    assert 400 <= response.status_code < 500, f"expected a refusal: {shown(response)}"


def named_in(name: str, problem: dict[str, Any]) -> bool:
    locations = [str(part) for error in problem.get("errors") or [] for part in error["loc"]]
    return name in problem["detail"] or name in locations


async def write(
    http: httpx.AsyncClient,
    app: FastAPI,
    op: Operation,
    address: str,
    *,
    before: World,
    body: bytes | None = None,
    headers: dict[bytes, bytes] | None = None,
) -> httpx.Response:
    """Send a write and check its answer; a refusal must leave the world as it was."""
    sent = {b"Content-Type": b"application/json", **(headers or {})} if body else headers
    response = await http.request(op.method, address, content=body, headers=sent)
    assert_answered(response)
    if response.status_code >= 400:
        after = await observe(http, app)
        assert after == before, f"{shown(response)}, yet it changed {before.changes(after)}"
    return response


async def call(
    http: httpx.AsyncClient,
    app: FastAPI,
    op: Operation,
    targets: Targets,
    address: str,
    headers: dict[bytes, bytes] | None = None,
) -> httpx.Response:
    """A read, or a write with a valid body and the world checked around it."""
    if op.method == "GET":
        response = await http.get(address, headers=headers)
        assert_answered(response)
        return response
    before = await observe(http, app)
    body = json_bytes(valid_body(op, before, targets)) if op.body else None
    return await write(http, app, op, address, before=before, body=body, headers=headers)


@pytest.fixture
async def http(client: httpx.AsyncClient, api_tokens: Mapping[str, str]) -> httpx.AsyncClient:
    """The in-process client as an admin, so that every route does its work rather than
    refusing the role."""
    client.headers.update(bearer(api_tokens["admin"]))
    return client


@pytest.fixture
async def targets(http: httpx.AsyncClient) -> Targets:
    program = await create_program(http, "fuzz-target")
    milestone = await http.post(f"{API}/programs/fuzz-target/milestones", json={"title": "m"})
    key = await http.post(f"{API}/keys", json={"name": "fuzz-key", "role": "viewer"})
    webhook = await http.post(f"{API}/webhooks", json={"url": "https://fuzz.example/hook"})
    assert milestone.status_code == key.status_code == webhook.status_code == 201, (
        milestone.text,
        key.text,
        webhook.text,
    )
    return Targets(
        program=program["code"],
        milestone=milestone.json()["milestone"]["id"],
        webhook=webhook.json()["id"],
    )


# --- bodies, paths, query values, headers -------------------------------------------------------


@pytest.mark.parametrize("op", BODY_WRITES, ids=lambda op: f"{op.method} {op.path}")
@fuzz(25)
@given(data=st.data())
async def test_any_value_in_any_body_field_is_answered_and_a_refusal_writes_nothing(
    http: httpx.AsyncClient, app: FastAPI, targets: Targets, op: Operation, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(sorted(op.body)), label="field")
    value = data.draw(field_values(field, op.body[field]), label="value")
    before = await observe(http, app)
    body = {**valid_body(op, before, targets), field: value}
    response = await write(
        http, app, op, url_for(op, targets), before=before, body=json_bytes(body)
    )
    if must_refuse_field(field, op.body[field], value):
        assert_refused(response)


@fuzz(50)
@given(target=st.sampled_from(PATH_PARAMETERS), value=url_text | hostile_numbers)
async def test_any_path_segment_is_answered_and_a_refusal_writes_nothing(
    http: httpx.AsyncClient,
    app: FastAPI,
    targets: Targets,
    target: tuple[Operation, str],
    value: str,
) -> None:
    op, name = target
    await call(http, app, op, targets, url_for(op, targets, path={name: value}))


@fuzz(60)
@given(data=st.data())
async def test_any_query_value_is_answered(
    http: httpx.AsyncClient, targets: Targets, data: st.DataObject
) -> None:
    op, name = data.draw(st.sampled_from(QUERY_PARAMETERS), label="parameter")
    schema = op.parameters["query", name]
    value = data.draw(query_values(schema), label="value")
    response = await http.get(url_for(op, targets, query=[(name, value)]))
    assert_answered(response)
    if must_refuse_parameter(schema, value):
        assert_refused(response)


HEADERS = ("If-Match", "If-None-Match", "Idempotency-Key", "Authorization", "Content-Type")


@fuzz(50)
@given(op=st.sampled_from(IN_PROCESS), header=st.sampled_from(HEADERS), value=header_values)
async def test_any_header_value_is_answered_and_a_refusal_writes_nothing(
    http: httpx.AsyncClient,
    app: FastAPI,
    targets: Targets,
    op: Operation,
    header: str,
    value: bytes,
) -> None:
    value = b"Bearer " + value if header == "Authorization" else value
    response = await call(http, app, op, targets, url_for(op, targets), {header.encode(): value})
    declared = op.parameters.get(("header", header))
    if declared and must_refuse_parameter(declared, value.decode("latin-1")):
        assert_refused(response)


# --- cursors, dates, numbers --------------------------------------------------------------------


@fuzz(50)
@given(target=st.sampled_from(CURSOR_PARAMETERS), cursor=cursors)
@example(target=parameter("GET", "/programs", "cursor"), cursor=cursor_of([2**63]))
# Past an INTEGER id column: PostgreSQL's driver refuses to send it, so it must not get there.
@example(target=parameter("GET", "/programs", "cursor"), cursor=cursor_of([2**31]))
@example(target=parameter("GET", "/milestones", "cursor"), cursor=cursor_of([2**31]))
@example(target=parameter("GET", "/programs/{code}/history", "cursor"), cursor=cursor_of([2**31]))
@example(target=parameter("GET", "/programs", "cursor"), cursor=cursor_of([-(2**63) - 1]))
@example(target=parameter("GET", "/programs", "cursor"), cursor=cursor_of([1e308]))
@example(target=parameter("GET", "/programs/{code}/history", "cursor"), cursor=cursor_of([2**63]))
@example(target=parameter("GET", "/events", "after"), cursor=cursor_of([2**63, 1]))
@example(target=parameter("GET", "/export/events.ndjson", "after"), cursor=cursor_of([1, 2**63]))
@example(target=parameter("GET", "/export/events.csv", "after"), cursor=cursor_of([2**63, 1]))
async def test_a_cursor_the_service_cannot_have_issued_is_refused(
    http: httpx.AsyncClient, targets: Targets, target: tuple[Operation, str], cursor: str
) -> None:
    op, name = target
    response = await http.get(url_for(op, targets, query=[(name, cursor)]))
    assert_answered(response)
    if cursor and not could_be_issued(cursor):  # an empty one may stand for none
        assert_refused(response)


POINT_IN_TIME_READS = tuple(op for op in READS if "known_at" in op.names("query"))


@fuzz(30)
@given(op=st.sampled_from(POINT_IN_TIME_READS), as_of=extreme_days, known_at=hostile_moments)
@example(op=operation("GET", "/programs"), as_of=date.min, known_at="0001-01-01T00:00:00+01:00")
@example(
    op=operation("GET", "/programs/{code}"),
    as_of=date.max,
    known_at="9999-12-31T23:59:59-01:00",
)
@example(
    op=operation("GET", "/stats/summary"), as_of=date.max, known_at="9999-12-31T23:59:59-01:00"
)
async def test_a_point_in_time_at_the_ends_of_the_calendar_is_answered(
    http: httpx.AsyncClient, targets: Targets, op: Operation, as_of: date, known_at: str
) -> None:
    query = [("known_at", known_at)]
    if "as_of" in op.names("query"):
        query.append(("as_of", as_of.isoformat()))
    assert_answered(await http.get(url_for(op, targets, query=query)))


INTERVALS = ("day", "week", "month", "quarter", "year")


@fuzz(30)
@given(start=extreme_days, end=extreme_days, interval=st.sampled_from(INTERVALS))
@example(start=date.min, end=date(9999, 12, 30), interval="day")
@example(start=date.max, end=date.max, interval="day")
@example(start=date.max, end=date.max, interval="week")
async def test_a_timeline_over_any_range_is_answered_and_too_many_points_refused_at_once(
    http: httpx.AsyncClient, start: date, end: date, interval: str
) -> None:
    started = time.monotonic()
    response = await http.get(
        f"{API}/stats/timeline",
        params={"start": start.isoformat(), "end": end.isoformat(), "interval": interval},
    )
    elapsed = time.monotonic() - started
    assert_answered(response)
    if response.status_code == 422:  # too many points must be refused, not computed first
        assert elapsed < 1, f"{shown(response)} after {elapsed:.1f} s"


@fuzz(4)
@given(due=st.none() | extreme_days, done=st.none() | extreme_days, reported=extreme_days)
@example(due=date.min, done=date.min, reported=date.min)
@example(due=date.max, done=None, reported=date.max)
async def test_extreme_dates_once_stored_leave_every_read_answering(
    http: httpx.AsyncClient,
    app: FastAPI,
    targets: Targets,
    due: date | None,
    done: date | None,
    reported: date,
) -> None:
    milestone = {"title": "extreme", "due_date": due, "done_date": done}
    report = {"date": reported, "measures_done_pct": 1, "statement": "extreme"}
    for op, body in (
        (operation("POST", "/programs/{code}/milestones"), milestone),
        (operation("POST", "/roadmaps/{code}/progress"), report),
    ):
        sent = {name: v.isoformat() if isinstance(v, date) else v for name, v in body.items()}
        before = await observe(http, app)
        await write(http, app, op, url_for(op, targets), before=before, body=json_bytes(sent))
    for op in READS:
        assert_answered(await http.get(url_for(op, targets)))


# --- query strings ------------------------------------------------------------------------------


@fuzz(30)
@given(op=st.sampled_from(IN_PROCESS), name=parameter_names)
@example(op=operation("GET", "/programs"), name="statuss")
@example(op=operation("POST", "/programs"), name="dry_run")
async def test_an_unknown_query_parameter_is_refused_by_name(
    http: httpx.AsyncClient, app: FastAPI, targets: Targets, op: Operation, name: str
) -> None:
    # A name with "_" in front is a cache buster (`_=1700000000000`), which the service ignores.
    assume(name not in op.names("query") and not name.startswith("_"))
    response = await call(http, app, op, targets, url_for(op, targets, query=[(name, "1")]))
    assert response.status_code == 422, shown(response)
    assert named_in(name, response.json()), shown(response)


# Filters that name something with its own table or list: a value naming nothing is a mistake
# (a typo, or a roadmap of another deployment), not an empty answer.
NAMING_FILTERS = (
    parameter("GET", "/programs", "roadmap"),
    parameter("GET", "/events", "program"),
    parameter("GET", "/events", "kind"),
    parameter("GET", "/stats/summary", "roadmap"),
    parameter("GET", "/stats/timeline", "roadmap"),
)


@fuzz(15)
@given(
    target=st.sampled_from(NAMING_FILTERS),
    value=st.from_regex(r"nope[a-z0-9_-]{0,20}", fullmatch=True),
)
@example(target=parameter("GET", "/events", "kind"), value="bogus")
@example(target=parameter("GET", "/stats/summary", "roadmap"), value="nope")
@example(target=parameter("GET", "/programs", "roadmap"), value="nope")
async def test_a_filter_that_names_nothing_is_refused(
    http: httpx.AsyncClient, targets: Targets, target: tuple[Operation, str], value: str
) -> None:
    op, name = target
    response = await http.get(url_for(op, targets, query=[(name, value)]))
    assert_answered(response)
    assert response.status_code in (404, 422), shown(response)


# Two values each parameter takes.
VALID_VALUES: dict[str, tuple[str, str]] = {
    "status": ("completed", "carried_over"),
    "sector": ("energy", "transport"),
    "roadmap": ("union-state-2021-2023", "union-state-2024-2026"),
    "q": ("gas", "market"),
    "overdue": ("true", "false"),
    "limit": ("1", "500"),
    "cursor": (cursor_of([1]), cursor_of([5])),
    "after": (cursor_of([0, 1]), cursor_of([0, 5])),
    "as_of": ("2022-12-31", "2023-12-31"),
    "known_at": ("2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
    "program": ("gas_market", "transport"),
    "kind": ("created", "status_changed"),
    "start": ("2022-01-01", "2023-01-01"),
    "end": ("2023-12-31", "2024-12-31"),
    "interval": ("month", "year"),
    "format": ("wide", "long"),
    "state": ("done", "missed"),
    "due_before": ("2023-01-01", "2024-01-01"),
    "body": ("Presidents", "Supreme State Council"),
}
# Filters of a list, which may mean "any of" when repeated; any other parameter given twice is
# ambiguous and must be refused.
ANY_OF = {
    parameter("GET", "/programs", "status"),
    parameter("GET", "/programs", "sector"),
    parameter("GET", "/programs", "roadmap"),
    parameter("GET", "/events", "program"),
    parameter("GET", "/events", "kind"),
}


def _items(response: httpx.Response) -> set[Any]:
    assert response.status_code == 200, shown(response)
    return {item.get("id", item.get("code")) for item in response.json()["items"]}


@fuzz(40)
@given(target=st.sampled_from(QUERY_PARAMETERS + CURSOR_PARAMETERS))
@example(target=parameter("GET", "/programs", "status"))
async def test_a_repeated_parameter_means_any_of_or_is_refused(
    http: httpx.AsyncClient, targets: Targets, target: tuple[Operation, str]
) -> None:
    op, name = target
    assert name in VALID_VALUES, f"VALID_VALUES needs two values of {name!r}"
    first, second = VALID_VALUES[name]
    whole = [("limit", "500")] if target in ANY_OF else []  # so that pages compare
    both = await http.get(url_for(op, targets, query=[(name, first), (name, second), *whole]))
    assert_answered(both)
    if both.status_code == 422:
        assert named_in(name, both.json()), shown(both)
        return
    assert target in ANY_OF, f"given twice, neither refused nor 'any of': {shown(both)}"
    one, other = [
        await http.get(url_for(op, targets, query=[(name, value), *whole]))
        for value in (first, second)
    ]
    assert _items(both) == _items(one) | _items(other), shown(both)


# --- methods and CORS ---------------------------------------------------------------------------

OUTSIDE_THE_DOCUMENT = ("/metrics", "/openapi.json", "/docs")


async def test_head_answers_like_get_without_a_body(
    http: httpx.AsyncClient, targets: Targets
) -> None:
    differences = []
    for address in [url_for(op, targets) for op in READS] + list(OUTSIDE_THE_DOCUMENT):
        get, head = await http.get(address), await http.head(address)
        expected = (get.status_code, get.headers.get("content-type"), b"")
        if (head.status_code, head.headers.get("content-type"), head.content) != expected:
            differences.append(f"HEAD {address}: {shown(head)}; GET: {get.status_code}")
    assert not differences, "\n".join(differences)


ALLOWED_ORIGIN = "https://allowed.example"


@pytest.fixture
async def cors_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an application that allows one origin (CORS is off by default)."""
    application = create_app(settings.model_copy(update={"cors_origins": ALLOWED_ORIGIN}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


ORIGINS = st.sampled_from([ALLOWED_ORIGIN, "https://refused.example", "null"]) | safe_header_text
METHODS = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "TRACE"]) | safe_header_text
REQUEST_HEADERS = st.sampled_from(["Authorization", "If-Match", "X-Refused"]) | safe_header_text


@fuzz(40)
@given(
    op=st.sampled_from(OPERATIONS),
    origin=ORIGINS,
    method=METHODS,
    requested=st.lists(REQUEST_HEADERS, max_size=3),
)
@example(
    op=operation("POST", "/programs"), origin="https://refused.example", method="POST", requested=[]
)
async def test_a_cors_preflight_is_allowed_or_refused_cleanly(
    cors_http: httpx.AsyncClient, op: Operation, origin: str, method: str, requested: list[str]
) -> None:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if requested:
        headers["Access-Control-Request-Headers"] = ", ".join(requested)
    address = url_for(op, Targets(program="gas_market", milestone=1, webhook=1))
    response = await cors_http.options(address, headers=headers)
    content_type = response.headers.get("content-type", "")
    assert response.status_code < 500, shown(response)
    assert not (response.status_code == 400 and content_type.startswith("text/plain")), shown(
        response
    )
    if response.status_code >= 400 and response.content:
        assert_answered(response)  # a refusal with a body is a problem document
    if origin != ALLOWED_ORIGIN:
        assert "access-control-allow-origin" not in response.headers, shown(response)


# --- on a real server ---------------------------------------------------------------------------


def assert_stream_keeps_going(response: httpx.Response) -> None:
    """A started stream sends events or stays open; it must not be cut after its 200."""
    try:
        first = next(response.iter_raw(), None)
    except httpx.ReadTimeout:
        return  # open and idle: nothing after this cursor yet
    except httpx.RemoteProtocolError as cut:
        pytest.fail(f"the stream was cut after its 200: {cut!r}")
    assert first is not None, f"the stream ended at once: {shown(response)}"


@pytest.mark.live
@settings(max_examples=30, deadline=None)
@given(cursor=cursors.filter(sendable_as_header), via=st.sampled_from(["after", "Last-Event-ID"]))
@example(cursor=cursor_of([2**63, 1]), via="after")
@example(cursor=cursor_of([1, -(2**63) - 1]), via="Last-Event-ID")
@example(cursor=NAMED_CURSORS[0], via="after")
def test_a_stream_refuses_a_bad_cursor_before_it_starts(
    live: LiveServer, cursor: str, via: str
) -> None:
    by_header = via == "Last-Event-ID"
    address = STREAM if by_header else f"{STREAM}?{query_string([('after', cursor)])}"
    timeout = httpx.Timeout(10, read=0.5)
    with (
        httpx.Client(base_url=live.base_url, timeout=timeout) as client,
        client.stream("GET", address, headers={via: cursor} if by_header else {}) as response,
    ):
        if response.status_code != 200:
            response.read()
            assert_refused(response)
            return
        assert could_be_issued(cursor), f"a stream started for {cursor!r}"
        assert response.headers["content-type"].startswith("text/event-stream")
        assert_stream_keeps_going(response)


@pytest.mark.live
def test_the_stream_answers_head_and_refuses_unknown_parameters(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=httpx.Timeout(10, read=2)) as client:
        head = client.head(STREAM)
        assert (head.status_code, head.content) == (200, b""), shown(head)
        assert head.headers["content-type"].startswith("text/event-stream"), shown(head)
        with client.stream("GET", f"{STREAM}?afterr=1") as unknown:  # a 200 would never end
            answer = f"{unknown.status_code} {unknown.headers.get('content-type')}"
            assert unknown.status_code == 422, f"GET {STREAM}?afterr=1 -> {answer}"


def get_raw(live: LiveServer, path: str, headers: list[tuple[str, str]]) -> httpx.Response:
    """A GET by http.client, which writes 10,000 headers at once (httpx takes seconds)."""
    url = httpx.URL(live.base_url)
    connection = HTTPConnection(url.host, url.port, timeout=30)
    try:
        connection.putrequest("GET", path)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            content=answer.read(),
            request=httpx.Request("GET", f"{live.base_url}{path}"),
        )
    except OSError as error:
        pytest.fail(f"no answer, the connection failed: {error!r}")
    finally:
        connection.close()


@pytest.mark.live
@pytest.mark.parametrize(
    "headers",
    [[("X-Large", "x" * 2**20)], [(f"X-Many-{n}", "x") for n in range(10_000)]],
    ids=["one 1 MB header", "10,000 headers"],
)
def test_request_headers_over_the_limits_are_refused_with_a_problem(
    live: LiveServer, headers: list[tuple[str, str]]
) -> None:
    response = get_raw(live, f"{API}/workflow", headers)
    assert response.status_code in (431, 400), shown(response)
    assert_answered(response)
