"""Many writers, the same programmes, no If-Match: the record must stay whole.

Against a real `serve --workers 4`: 24 writers change 4 shared programmes at once without
If-Match (descriptive patches, status changes, new milestones and milestone edits, mixed) while
a consumer follows the feed; CONTENTION_SECONDS=60 makes it a minute's soak. Afterwards every
chain verifies link by link, every acknowledged event is stored as it was answered, and the
feed gave each programme's events in `seq` order.
"""

import asyncio
import itertools
import os
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from tests.support.builders import bearer
from tests.support.servers import LiveServer

API = "/api/v1"
SHARED = [f"shared-{n}" for n in range(4)]
WRITERS = 24
ROUNDS = 12

pytestmark = pytest.mark.live


@pytest.fixture
async def http(live: LiveServer, api_tokens: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=WRITERS + 4)
    async with httpx.AsyncClient(
        base_url=live.base_url, timeout=60, headers=bearer(api_tokens["editor"]), limits=limits
    ) as client:
        yield client


async def feed_end(http: httpx.AsyncClient) -> str | None:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["after"] = cursor
        page = (await http.get(f"{API}/events", params=params)).json()
        if not page["items"]:
            return cursor
        cursor = page["next_cursor"]


async def one_change(http: httpx.AsyncClient, rng: random.Random, writer: int, n: int) -> Any:
    """One unconditional write to a shared programme; the event it was answered with, if any."""
    code = rng.choice(SHARED)
    action = rng.randrange(4)
    if action == 0:
        response = await http.patch(f"{API}/programs/{code}", json={"summary": f"w{writer}-{n}"})
        assert response.status_code == 200, response.text
        return response.json()["event"]
    if action == 1:
        target = rng.choice(["coordinated", "draft"])
        response = await http.post(f"{API}/programs/{code}/transitions", json={"to_status": target})
        assert response.status_code in (201, 409), response.text
        return response.json()["event"] if response.status_code == 201 else None
    if action == 2:
        response = await http.post(
            f"{API}/programs/{code}/milestones", json={"title": f"m w{writer}-{n}"}
        )
        assert response.status_code == 201, response.text
        return response.json()["event"]
    listed = (await http.get(f"{API}/programs/{code}/milestones")).json()["items"]
    if not listed:
        return None
    milestone = rng.choice(listed)
    response = await http.patch(
        f"{API}/programs/{code}/milestones/{milestone['id']}",
        json={"title": f"edited w{writer}-{n}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["event"]


async def test_unconditional_writers_on_shared_programmes_keep_every_chain_whole(
    http: httpx.AsyncClient,
) -> None:
    for code in SHARED:
        response = await http.post(f"{API}/programs", json={"code": code, "title": code})
        assert response.status_code == 201, response.text
    cursor = await feed_end(http)
    acknowledged: dict[int, dict[str, Any]] = {}
    done = asyncio.Event()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(os.environ.get("CONTENTION_SECONDS", "0"))

    async def writer(n: int) -> None:
        rng = random.Random(n)
        round_ = 0
        # ROUNDS each, or for CONTENTION_SECONDS when set (a longer soak by hand).
        while round_ < ROUNDS or loop.time() < deadline:
            event = await one_change(http, rng, n, round_)
            if event is not None:
                acknowledged[event["id"]] = event
            round_ += 1

    async def writers() -> None:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        done.set()

    async def consumer() -> list[dict[str, Any]]:
        nonlocal cursor
        seen: list[dict[str, Any]] = []
        give_up = deadline + 120
        while loop.time() < give_up:
            params: dict[str, Any] = {"limit": 13}
            if cursor:
                params["after"] = cursor
            page = (await http.get(f"{API}/events", params=params)).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if not page["items"]:
                if done.is_set() and len(seen) >= len(acknowledged):
                    return seen
                await asyncio.sleep(0.02)
        return seen

    seen, _ = await asyncio.gather(consumer(), writers())
    assert len(acknowledged) > WRITERS, "the load did not get going"

    report = (await http.get(f"{API}/audit/verify")).json()
    assert report["ok"], report["mismatches"][:5]

    # Every link is right: each event names its predecessor's hash, the first one genesis.
    for code in SHARED:
        history = (await http.get(f"{API}/programs/{code}/history", params={"limit": 500})).json()[
            "items"
        ]
        assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
        assert history[0]["prev_hash"] == "0" * 64
        for before, after in itertools.pairwise(history):
            assert after["prev_hash"] == before["hash"], (code, after["seq"])

    # Exactly once, as acknowledged, and in each programme's seq order.
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert {e["id"] for e in seen if e["program"] in SHARED} == set(acknowledged)
    for event in seen:
        if event["id"] in acknowledged:
            assert event["hash"] == acknowledged[event["id"]]["hash"]
    last_seq = dict.fromkeys(SHARED, 1)  # the feed was followed from after the creations
    for event in seen:
        assert event["seq"] == last_seq[event["program"]] + 1, (
            f"{event['program']}: seq {event['seq']} delivered after seq "
            f"{last_seq[event['program']]}"
        )
        last_seq[event["program"]] = event["seq"]
