"""Every error is application/problem+json, and no stack trace reaches a client."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from service import db
from service.config import Settings
from service.edges import MAX_HEADER_COUNT
from service.errors import status_problem
from service.limits import MAX_BODY_BYTES
from service.main import create_app
from tests.support.builders import API
from tests.support.databases import is_postgresql

PROBLEM = "application/problem+json"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert set(response.json()) >= {"type", "title", "status", "detail"}
    # The same type as a programme that does not exist: one meaning, one type.
    assert response.json()["type"] == "urn:roadmap:problem:not-found"
    missing = await client.get(f"{API}/programs/no_such_programme")
    assert missing.json()["type"] == response.json()["type"]


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"{API}/programs/gas_market")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 405
    assert response.json()["type"] == "urn:roadmap:problem:method-not-allowed"


async def test_refusals_at_the_edge_are_typed_problems(client: httpx.AsyncClient) -> None:
    large = b"x" * (MAX_BODY_BYTES + 1)
    declared = await client.post(f"{API}/programs", content=large)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while it streams
        for _ in range(3):
            yield b"x" * (MAX_BODY_BYTES // 2)

    streamed = await client.post(f"{API}/programs", content=chunks())
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:roadmap:problem:content-too-large"
    many = {f"x-filler-{n}": "1" for n in range(MAX_HEADER_COUNT + 1)}
    crowded = await client.get(f"{API}/workflow", headers=many)
    assert crowded.status_code == 431
    assert crowded.headers["content-type"] == PROBLEM
    assert crowded.json()["type"] == "urn:roadmap:problem:headers-too-large"


def test_every_status_has_a_problem_type_in_the_one_scheme() -> None:
    for status in (400, 406, 409, 415, 429, 502):
        type_, title = status_problem(status)
        assert type_.startswith("urn:roadmap:problem:")
        assert title
    assert status_problem(406)[0] == "urn:roadmap:problem:not-acceptable"


async def test_validation_problem_lists_the_offending_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/programs/gas_market/transitions", json={"to_status": "nowhere", "extra": 1}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    locations = {tuple(error["loc"]) for error in problem["errors"]}
    assert ("body", "to_status") in locations
    assert ("body", "extra") in locations


async def test_unexpected_error_is_a_bare_500_problem(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:roadmap:problem:internal-error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/programs/{code}/transitions" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_nul_characters_are_refused_everywhere(client: httpx.AsyncClient) -> None:
    """PostgreSQL cannot store U+0000: it must be a 422, never a 500."""
    attempts = [
        client.patch(f"{API}/programs/transport", json={"summary": "a\x00b"}),
        client.post(f"{API}/programs", json={"code": "nul_code", "title": "a\x00b"}),
        client.post(
            f"{API}/programs/transport/transitions",
            json={"to_status": "draft", "note": "\x00"},
        ),
        client.get(f"{API}/programs", params={"q": "a\x00"}),
        client.get(f"{API}/programs/a%00b"),
        client.get(f"{API}/events", params={"program": "\x00"}),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 422, response.text


@pytest.mark.skipif(not is_postgresql(), reason="the pool bound is PostgreSQL's (db.create_engine)")
async def test_an_exhausted_pool_is_a_503_to_retry(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "POOL_TIMEOUT_S", 0.5)
    app = create_app(Settings(database_url=database_url, db_pool_size=1))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            async with app.state.engine.connect():  # holds the pool's only connection
                busy = await http.get(f"{API}/programs")
            assert busy.status_code == 503
            assert busy.headers["content-type"] == PROBLEM
            assert busy.headers["retry-after"] == "1"
            assert "Traceback" not in busy.text
            assert (await http.get(f"{API}/programs")).status_code == 200  # free again
