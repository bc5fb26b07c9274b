"""GET /events: every committed event once, for a consumer that keeps its cursor."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.db import create_engine
from service.programs.schemas import TransitionRequest
from service.programs.service import Actor, transition_program
from service.rules.workflow import Status
from tests.support.builders import API, SEEDED_EVENTS, create_program, transition


async def read_all(
    client: httpx.AsyncClient, after: str | None, limit: int = 37
) -> tuple[list[int], str]:
    ids: list[int] = []
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if after:
            params["after"] = after
        body = (await client.get(f"{API}/events", params=params)).json()
        ids += [e["id"] for e in body["items"]]
        assert body["next_cursor"]
        if not body["items"]:
            return ids, body["next_cursor"]
        after = body["next_cursor"]


async def test_a_polling_consumer_sees_each_event_once(client: httpx.AsyncClient) -> None:
    seen, cursor = await read_all(client, None)
    assert len(seen) == len(set(seen)) == SEEDED_EVENTS
    again, same_cursor = await read_all(client, cursor)
    assert again == []
    assert same_cursor == cursor

    await create_program(client, "feed1")
    await transition(client, "feed1", "coordinated")
    new, _ = await read_all(client, cursor)
    assert len(new) == 2
    assert not set(new) & set(seen)


async def test_feed_filters_by_programme_and_kind(client: httpx.AsyncClient) -> None:
    gas = (await client.get(f"{API}/events", params={"program": "gas_market", "limit": 500})).json()
    assert [e["seq"] for e in gas["items"]] == list(range(1, 9))
    created = (await client.get(f"{API}/events", params={"kind": "created", "limit": 500})).json()
    assert len(created["items"]) == 28
    assert {e["kind"] for e in created["items"]} == {"created"}


async def test_feed_pages_take_up_to_a_thousand_events(client: httpx.AsyncClient) -> None:
    everything = await client.get(f"{API}/events", params={"limit": 1000})
    assert everything.status_code == 200, everything.text
    items = everything.json()["items"]
    assert len(items) > 100  # the whole seeded history, in one page
    second = await client.get(
        f"{API}/events", params={"limit": 100, "after": everything.json()["next_cursor"]}
    )
    assert second.json()["items"] == []
    too_many = await client.get(f"{API}/events", params={"limit": 1001})
    assert too_many.status_code == 422
    assert too_many.headers["content-type"] == "application/problem+json"
    programmes = await client.get(f"{API}/programs", params={"limit": 1000})
    assert programmes.status_code == 422  # the lists keep their 500


async def test_feed_rejects_a_forged_cursor(client: httpx.AsyncClient) -> None:
    for bad in ("not-a-cursor", "WzFd", "eyJhIjoxfQ"):
        response = await client.get(f"{API}/events", params={"after": bad})
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_event_committed_late_is_not_skipped(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Writer A takes an id first but commits last; a poll in between must not hand out a
    cursor past A's event (PostgreSQL only: SQLite admits one writer at a time)."""
    sessionmaker = app.state.sessionmaker
    async with sessionmaker() as probe:
        if probe.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite serialises writers, so ids are in commit order already")
    await create_program(client, "late_a")
    await create_program(client, "late_b")
    _, cursor = await read_all(client, None)

    async with sessionmaker() as slow_writer:
        _, late_event = await transition_program(
            slow_writer, "late_a", TransitionRequest(to_status=Status.COORDINATED), Actor("a")
        )
        quick = await transition(client, "late_b", "coordinated")
        assert quick.status_code == 201
        assert quick.json()["event"]["id"] > late_event.id
        while_open, cursor = await read_all(client, cursor)
        assert late_event.id not in while_open
        await slow_writer.commit()
    after_commit, _ = await read_all(client, cursor)
    delivered = while_open + after_commit
    assert sorted(delivered) == sorted([late_event.id, quick.json()["event"]["id"]])


async def test_a_long_transaction_in_another_database_does_not_hold_the_feed(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """Transaction ids are shared by every database of a PostgreSQL server; only this
    database's running transactions may hold the feed back."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server's databases share transaction ids; SQLite has none")
    elsewhere = create_engine(
        make_url(database_url).set(database="postgres").render_as_string(False)
    )
    async with elsewhere.connect() as other:
        await other.execute(text("SELECT pg_current_xact_id()"))  # holds an xid, stays open
        _, cursor = await read_all(client, None)
        await create_program(client, "not_held_back")
        new, _ = await read_all(client, cursor)
        assert len(new) == 1
        await other.rollback()
    await elsewhere.dispose()
