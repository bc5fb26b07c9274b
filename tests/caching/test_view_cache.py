"""Each worker keeps the answers it rendered last; none may ever be stale, whichever worker
made the change. Two app instances on one database stand for two workers."""

from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import literal, select

from service.caching import Validation, View, ViewCache
from service.config import Settings
from service.main import create_app
from tests.support.builders import API, bearer, create_program, transition


@pytest.fixture
async def other_worker(
    settings: Settings, api_tokens: Mapping[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An editor's client on a second app instance over the same database."""
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        transport = httpx.ASGITransport(app=second, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=bearer(api_tokens["editor"])
        ) as http:
            yield http


READS = (
    "/programs",
    "/programs?status=coordinated",
    "/programs/cached",
    "/programs/cached/history",
    "/programs/cached/milestones",
    "/stats/summary",
    "/stats/timeline?start=2021-01-01&interval=year",
    "/roadmaps/union-state-2021-2023",
)


async def test_answers_follow_a_change_made_on_another_worker(
    anonymous: httpx.AsyncClient, other_worker: httpx.AsyncClient
) -> None:
    await create_program(other_worker, "cached")
    before = {}
    for path in READS:
        first = await anonymous.get(f"{API}{path}")
        again = await anonymous.get(f"{API}{path}")  # from this worker's cache
        assert first.status_code == again.status_code == 200, (path, first.text)
        assert again.content == first.content, path
        assert again.headers["etag"] == first.headers["etag"], path
        before[path] = first

    response = await transition(other_worker, "cached", "coordinated")
    assert response.status_code == 201, response.text

    for path in READS:
        after = await anonymous.get(f"{API}{path}")
        assert after.status_code == 200, path
        assert after.headers["etag"] != before[path].headers["etag"], path
        if path != "/programs/cached/milestones":  # the only view the change leaves alone
            assert after.content != before[path].content, path
    programme = (await anonymous.get(f"{API}/programs/cached")).json()
    assert programme["status"] == "coordinated"
    listed = (await anonymous.get(f"{API}/programs?status=coordinated")).json()["items"]
    assert "cached" in [p["code"] for p in listed]


async def test_a_cached_answer_is_the_answer_computed_afresh(
    anonymous: httpx.AsyncClient, database_url: str
) -> None:
    uncached = create_app(Settings(database_url=database_url, view_cache_mb=0))
    async with uncached.router.lifespan_context(uncached):
        transport = httpx.ASGITransport(app=uncached, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as fresh:
            for path in ("/programs", "/programs/transport", "/stats/summary"):
                await anonymous.get(f"{API}{path}")
                cached = await anonymous.get(f"{API}{path}")
                computed = await fresh.get(f"{API}{path}")
                assert cached.content == computed.content, path
                assert cached.headers["etag"] == computed.headers["etag"], path
                assert cached.headers["content-type"] == "application/json", path


async def test_a_feed_page_is_tagged_by_where_it_ends(client: httpx.AsyncClient) -> None:
    end = (await client.get(f"{API}/events", params={"limit": 500})).json()["next_cursor"]
    quiet = await client.get(f"{API}/events", params={"after": end})
    assert quiet.json() == {"items": [], "next_cursor": end}
    unchanged = await client.get(
        f"{API}/events", params={"after": end}, headers={"If-None-Match": quiet.headers["etag"]}
    )
    assert unchanged.status_code == 304

    await create_program(client, "fed")
    grown = await client.get(
        f"{API}/events", params={"after": end}, headers={"If-None-Match": quiet.headers["etag"]}
    )
    assert grown.status_code == 200
    assert [e["program"] for e in grown.json()["items"]] == ["fed"]
    assert grown.headers["etag"] != quiet.headers["etag"]


VALIDATION = Validation(select(literal(1)))


class _Body(BaseModel):
    text: str


def test_the_cache_holds_what_fits_and_only_for_its_validator() -> None:
    cache = ViewCache(max_bytes=1500)  # an entry here costs about 520 bytes
    first = View("/a", "v1", '"1"', VALIDATION)
    cache.put(first, _Body(text="x" * 100), {})
    assert cache.get(first) is not None
    assert cache.get(View("/a", "v2", '"2"', VALIDATION)) is None  # the data has moved on

    cache.put(View("/b", "v1", '"1"', VALIDATION), _Body(text="y" * 100), {})
    cache.put(
        View("/c", "v1", '"1"', VALIDATION), _Body(text="z" * 100), {}
    )  # a third is too many: /a goes
    assert cache.get(first) is None
    assert cache.get(View("/c", "v1", '"1"', VALIDATION)) is not None

    long_key = View(
        "/e?" + "junk=1&" * 200, "v1", '"1"', VALIDATION
    )  # the key counts against the bound
    cache.put(long_key, _Body(text="k"), {})
    assert cache.get(long_key) is None

    too_big = View("/d", "v1", '"1"', VALIDATION)
    answer = cache.put(too_big, _Body(text="w" * 2000), {})
    assert bytes(answer.body).startswith(b'{"text":"www')  # answered, but not kept
    assert cache.get(too_big) is None


async def test_no_cache_when_switched_off(database_url: str) -> None:
    app: FastAPI = create_app(Settings(database_url=database_url, view_cache_mb=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            await http.get(f"{API}/programs")
            assert app.state.view_cache.get(View(f"{API}/programs?", "", "", VALIDATION)) is None
            assert len(app.state.view_cache) == 0
