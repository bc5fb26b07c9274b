"""Write safety against real server processes (`serve --workers 4`) and many clients.

Runs on whichever database the suite runs on: SQLite by default, PostgreSQL in CI as well.
"""

import asyncio
import contextlib
import itertools
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builders import bearer
from tests.support.databases import clone_database, drop_database
from tests.support.servers import LiveServer, start_server

pytestmark = pytest.mark.live  # real `serve --workers 4` processes

API = "/api/v1"


@pytest.fixture
async def http(live: LiveServer, api_tokens: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live.base_url, timeout=30, headers=bearer(api_tokens["editor"])
    ) as client:
        yield client


async def create(http: httpx.AsyncClient, code: str) -> None:
    response = await http.post(f"{API}/programs", json={"code": code, "title": code})
    assert response.status_code == 201, response.text


async def all_events(http: httpx.AsyncClient, program: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 500}
    if program:
        params["program"] = program
    events: list[dict[str, Any]] = []
    while True:
        body = (await http.get(f"{API}/events", params=params)).json()
        events += body["items"]
        if not body["items"]:
            return events
        params["after"] = body["next_cursor"]


async def test_identical_transitions_one_wins_the_rest_get_409(http: httpx.AsyncClient) -> None:
    codes = [f"race-{n}" for n in range(5)]
    for code in codes:
        await create(http, code)
    requests = [
        http.post(f"{API}/programs/{code}/transitions", json={"to_status": "coordinated"})
        for code in codes
        for _ in range(16)
    ]
    responses = await asyncio.gather(*requests)
    for code in codes:
        statuses = sorted(
            r.status_code for r in responses if r.url.path == f"{API}/programs/{code}/transitions"
        )
        assert statuses == [201] + [409] * 15, (code, statuses)
        history = (await http.get(f"{API}/programs/{code}/history")).json()["items"]
        assert [e["seq"] for e in history] == [1, 2]
        assert history[1]["from_status"] == "draft"


async def test_if_match_writers_never_lose_an_update(http: httpx.AsyncClient) -> None:
    await create(http, "contended")

    async def writer(name: str) -> int:
        wins = 0
        for attempt in range(8):
            current = await http.get(f"{API}/programs/contended")
            response = await http.patch(
                f"{API}/programs/contended",
                json={"summary": f"{name}-{attempt}"},
                headers={"If-Match": current.headers["etag"]},
            )
            assert response.status_code in (200, 412), response.text
            wins += response.status_code == 200
        return wins

    wins = sum(await asyncio.gather(*(writer(f"w{n}") for n in range(8))))
    assert wins > 0, "no write got through: the test would pass if every write were refused"
    program = (await http.get(f"{API}/programs/contended")).json()
    assert program["version"] == 1 + wins
    updates = [e for e in await all_events(http, "contended") if e["kind"] == "updated"]
    assert len(updates) == wins
    # Each accepted change was made against the value the one before it wrote.
    for before, after in itertools.pairwise(updates):
        assert after["changes"]["summary"]["from"] == before["changes"]["summary"]["to"]


async def test_a_feed_consumer_beside_writers_sees_exactly_the_committed_events(
    http: httpx.AsyncClient,
) -> None:
    start = (await http.get(f"{API}/events", params={"limit": 1})).json()
    # Start from the feed's current end: consume everything after it.
    cursor = (await http.get(f"{API}/events", params={"limit": 500})).json()["next_cursor"]
    while True:
        page = (await http.get(f"{API}/events", params={"after": cursor, "limit": 500})).json()
        if not page["items"]:
            break
        cursor = page["next_cursor"]
    assert start["items"]
    acknowledged: list[int] = []
    writers_done = asyncio.Event()

    async def writer(n: int) -> None:
        code = f"feed-{n}"
        response = await http.post(f"{API}/programs", json={"code": code, "title": code})
        acknowledged.append(response.json()["event"]["id"])
        for status in ("coordinated", "draft") * 6:
            response = await http.post(
                f"{API}/programs/{code}/transitions", json={"to_status": status}
            )
            assert response.status_code == 201, response.text
            acknowledged.append(response.json()["event"]["id"])

    async def consumer() -> list[int]:
        nonlocal cursor
        seen: list[int] = []
        idle_after_done = 0
        deadline = asyncio.get_running_loop().time() + 60
        while idle_after_done < 3 and asyncio.get_running_loop().time() < deadline:
            page = (await http.get(f"{API}/events", params={"after": cursor, "limit": 7})).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if not page["items"]:
                if writers_done.is_set() and len(seen) >= len(acknowledged):
                    idle_after_done += 1
                await asyncio.sleep(0.01)
        return seen

    async def writers() -> None:
        await asyncio.gather(*(writer(n) for n in range(12)))
        writers_done.set()

    seen, _ = await asyncio.gather(consumer(), writers())
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert sorted(seen) == sorted(acknowledged)


@pytest.fixture
async def crash_database(
    seeded_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    url = await clone_database(seeded_template, tmp_path_factory.mktemp("crash"))
    yield url
    await drop_database(url)


async def test_sigkill_under_load_loses_no_acknowledged_event(
    crash_database: str, tmp_path: Path, api_tokens: Mapping[str, str]
) -> None:
    server = start_server(crash_database, tmp_path / "before.log")
    acknowledged: dict[int, str] = {}
    under_way = asyncio.Event()

    def acknowledge(event: dict[str, Any]) -> None:
        acknowledged[event["id"]] = event["hash"]
        if len(acknowledged) >= 48:
            under_way.set()

    async def editor(client: httpx.AsyncClient, n: int) -> None:
        code = f"crash-{n}"
        try:
            response = await client.post(f"{API}/programs", json={"code": code, "title": code})
            if response.status_code != 201:
                return
            acknowledge(response.json()["event"])
            for round_ in range(200):
                response = await client.post(
                    f"{API}/programs/{code}/transitions",
                    json={"to_status": "coordinated" if round_ % 2 == 0 else "draft"},
                )
                if response.status_code == 201:
                    acknowledge(response.json()["event"])
                response = await client.patch(
                    f"{API}/programs/{code}", json={"summary": f"round {round_}"}
                )
                if response.status_code == 200 and response.json()["event"]:
                    acknowledge(response.json()["event"])
        except httpx.TransportError:
            return  # the server is gone: what was acknowledged so far is what counts

    as_editor = bearer(api_tokens["editor"])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10, headers=as_editor) as client:
        load = asyncio.gather(*(editor(client, n) for n in range(16)))
        # Kill once the load is well under way (not after a fixed time, which a busy machine
        # may spend on the first few requests).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(under_way.wait(), timeout=30)
        server.stop(signal.SIGKILL)
        await load
    assert len(acknowledged) > 16, "the load did not get going before the kill"

    restarted = start_server(crash_database, tmp_path / "after.log", workers=1)
    try:
        async with httpx.AsyncClient(base_url=restarted.base_url, timeout=60) as client:
            stored = {e["id"]: e["hash"] for e in await all_events(client)}
            lost = {i for i in acknowledged if stored.get(i) != acknowledged[i]}
            assert not lost, f"acknowledged events lost or changed: {sorted(lost)[:10]}"
            report = (await client.get(f"{API}/audit/verify")).json()
            assert report["ok"], report["mismatches"][:5]
            programs = (await client.get(f"{API}/programs", params={"limit": 500})).json()
            for program in programs["items"]:
                if not program["code"].startswith("crash-"):
                    continue
                history = (
                    await client.get(
                        f"{API}/programs/{program['code']}/history", params={"limit": 500}
                    )
                ).json()["items"]
                assert program["version"] == len(history)
                statuses = [e["to_status"] for e in history if e["to_status"]]
                assert program["status"] == statuses[-1]
    finally:
        assert restarted.stop() == 0
