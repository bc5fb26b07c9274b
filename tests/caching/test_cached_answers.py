"""Answers from a worker's cache before routing (service.cached_answers): the route's own
answer, validated by the database on every request, and only where nothing else could decide.

A spy on the validating read of each path tells them apart: the fast path reads the entry's
validator with db.first_row_on_driver, the routes with db.fetch_first."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from prometheus_client import REGISTRY

import service.cached_answers
import service.caching
import service.db
import service.programs.service
from service.config import Settings
from service.db import ConnectionLost
from service.main import create_app
from tests.conftest import in_process
from tests.support.builders import API, bearer, create_program

PATHS = (
    "/programs?limit=100",
    "/programs?status=supreme_council_approved",
    "/programs/gas_market",
    "/programs/gas_market?as_of=2021-10-01",
    "/programs/gas_market/history",
    "/stats/summary",
    "/stats/summary.csv",
    "/roadmaps/union-state-2021-2023",
)


@dataclass
class Reads:
    """How many validators each path read."""

    fast: int = 0
    route: int = 0


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    counted = Reads()
    fast_path = service.db.first_row_on_driver

    async def on_the_fast_path(*args: Any, **kwargs: Any) -> Any:
        counted.fast += 1
        return await fast_path(*args, **kwargs)

    def by_the_route(read: Any) -> Any:
        async def counting(*args: Any, **kwargs: Any) -> Any:
            counted.route += 1
            return await read(*args, **kwargs)

        return counting

    monkeypatch.setattr(service.cached_answers, "first_row_on_driver", on_the_fast_path)
    for module in (service.caching, service.programs.service):
        monkeypatch.setattr(module, "fetch_first", by_the_route(module.fetch_first))
    return counted


def requests_counted(route: str, status: int) -> float:
    labels = {"method": "GET", "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("roadmap_http_requests_total", labels) or 0.0


@pytest.mark.parametrize("path", PATHS)
async def test_a_hit_before_routing_is_the_routes_own_answer(
    anonymous: httpx.AsyncClient, reads: Reads, path: str
) -> None:
    computed = await anonymous.get(f"{API}{path}")
    assert computed.status_code == 200, computed.text
    assert (reads.fast, reads.route) == (0, 1)  # no entry yet: the route answered

    cached = await anonymous.get(f"{API}{path}")
    assert (reads.fast, reads.route) == (1, 1)  # answered before routing
    assert cached.status_code == 200
    assert cached.content == computed.content
    for header in ("content-type", "content-length", "etag"):
        assert cached.headers[header] == computed.headers[header], header

    held = await anonymous.get(f"{API}{path}", headers={"If-None-Match": computed.headers["etag"]})
    assert (held.status_code, held.content) == (304, b"")
    assert held.headers["etag"] == computed.headers["etag"]
    assert held.headers["vary"] == "Accept-Encoding"
    head = await anonymous.head(f"{API}{path}")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["etag"] == computed.headers["etag"]
    packed = await anonymous.get(f"{API}{path}", headers={"Accept-Encoding": "gzip"})
    assert packed.content == computed.content  # httpx decodes it
    assert (reads.fast, reads.route) == (4, 1)


async def test_a_hit_is_logged_and_counted_under_its_route(
    anonymous: httpx.AsyncClient, reads: Reads
) -> None:
    route = f"{API}/programs/{{code}}"
    await anonymous.get(f"{API}/programs/transport")
    before = requests_counted(route, 200), requests_counted(route, 304)
    cached = await anonymous.get(f"{API}/programs/transport")
    await anonymous.get(
        f"{API}/programs/transport", headers={"If-None-Match": cached.headers["etag"]}
    )
    assert reads.fast == 2
    assert (requests_counted(route, 200), requests_counted(route, 304)) == (
        before[0] + 1,
        before[1] + 1,
    )


async def test_a_change_made_since_goes_to_the_route(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient, reads: Reads
) -> None:
    kept = await anonymous.get(f"{API}/programs/transport")
    changed = await client.patch(f"{API}/programs/transport", json={"summary": "since"})
    assert changed.status_code == 200, changed.text
    fresh = await anonymous.get(f"{API}/programs/transport")
    assert (reads.fast, reads.route) == (1, 2)  # read the validator, found it moved on
    assert fresh.json()["summary"] == "since"
    assert fresh.headers["etag"] != kept.headers["etag"]


async def test_a_caller_with_credentials_goes_to_the_route(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str], reads: Reads
) -> None:
    await anonymous.get(f"{API}/programs/transport")  # kept
    unknown = await anonymous.get(f"{API}/programs/transport", headers=bearer("rmk_nonsense"))
    assert unknown.status_code == 401
    assert unknown.headers["content-type"] == "application/problem+json"
    known = await anonymous.get(f"{API}/programs/transport", headers=bearer(api_tokens["viewer"]))
    assert known.status_code == 200
    assert reads.fast == 0


async def test_reads_that_need_a_key_are_never_answered_from_the_cache(
    database_url: str, api_tokens: Mapping[str, str], reads: Reads
) -> None:
    app: FastAPI = create_app(Settings(database_url=database_url, require_auth_for_reads=True))
    async with app.router.lifespan_context(app), in_process(app) as http:
        viewer = bearer(api_tokens["viewer"])
        for _ in range(2):  # kept, then read again: the route both times
            assert (await http.get(f"{API}/programs", headers=viewer)).status_code == 200
        anonymous = await http.get(f"{API}/programs")
    assert anonymous.status_code == 401
    assert reads.fast == 0


def fail_fast_path(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    async def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(service.cached_answers, "first_row_on_driver", failing)


async def test_a_connection_lost_on_the_fast_path_leaves_the_answer_to_the_route(
    anonymous: httpx.AsyncClient, reads: Reads, monkeypatch: pytest.MonkeyPatch
) -> None:
    await anonymous.get(f"{API}/programs/transport")  # kept
    fail_fast_path(monkeypatch, ConnectionLost())
    answer = await anonymous.get(f"{API}/programs/transport")
    assert answer.status_code == 200  # the route read it again, on another connection
    assert reads.route == 2


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (ConnectionRefusedError("the database went away"), "5"),  # out of reach
        (sqlalchemy.exc.TimeoutError("no connection in time"), "1"),  # too busy
    ],
)
async def test_a_database_failing_on_the_fast_path_is_a_503_at_once(
    anonymous: httpx.AsyncClient,
    reads: Reads,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    retry_after: str,
) -> None:
    await anonymous.get(f"{API}/programs/transport")  # kept
    fail_fast_path(monkeypatch, error)
    answer = await anonymous.get(f"{API}/programs/transport")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == retry_after
    assert reads.route == 1  # not made to wait a second time


async def test_a_bug_on_the_fast_path_is_a_500_not_a_detour(
    app: FastAPI, reads: Reads, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(app) as anonymous:
        await anonymous.get(f"{API}/programs/transport")  # kept

        fail_fast_path(monkeypatch, KeyError("a parameter the statement does not have"))
        answer = await anonymous.get(f"{API}/programs/transport")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert "KeyError" not in answer.text


async def test_a_new_programme_is_found_by_a_worker_that_kept_the_list(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient, reads: Reads
) -> None:
    listed = await anonymous.get(f"{API}/programs", params={"limit": 500})
    await create_program(client, "kept_list_new")
    again = await anonymous.get(f"{API}/programs", params={"limit": 500})
    assert "kept_list_new" in [p["code"] for p in again.json()["items"]]
    assert again.headers["etag"] != listed.headers["etag"]
    assert reads.fast == 1  # it read the fingerprint, which had moved
