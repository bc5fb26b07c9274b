"""The worker's one follower of the feed and the live streams it feeds: every stream gets
every event once, in feed order, whether it starts from now, from a cursor in the past or
ahead of the follower; the database is polled once per worker however many streams are open;
a stream that falls too far behind is cut off and resumes from its last id without a gap."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from service.audit import follower as follower_module
from service.audit.feed import decode_feed_cursor
from service.audit.follower import FeedFollower
from service.audit.stream import follow_feed
from tests.support.builders import API, create_program, transition

Message = dict[str, Any]


async def feed_cursor_now(client: httpx.AsyncClient) -> str:
    cursor: str | None = None
    while True:
        page = await client.get(
            f"{API}/events", params={"limit": 500, **({"after": cursor} if cursor else {})}
        )
        if not page.json()["items"]:
            assert cursor is not None
            return cursor
        cursor = page.json()["next_cursor"]


async def feed_ids_after(client: httpx.AsyncClient, cursor: str) -> list[int]:
    page = await client.get(f"{API}/events", params={"limit": 500, "after": cursor})
    return [item["id"] for item in page.json()["items"]]


async def write_events(client: httpx.AsyncClient, prefix: str, programmes: int) -> None:
    """Two events per programme: created, then coordinated."""
    for n in range(programmes):
        await create_program(client, f"{prefix}_{n}", roadmap="union-state-2021-2023")
        moved = await transition(client, f"{prefix}_{n}", "coordinated")
        assert moved.status_code == 201, moved.text


class Stream:
    """A live stream as its client sees it, read in a task of its own."""

    def __init__(self, app: FastAPI, after: str | None) -> None:
        self.stopping = anyio.Event()
        self.messages: list[Message] = []
        self.ended = asyncio.Event()
        self.source: AsyncIterator[Any] = follow_feed(
            app.state.sessionmaker,
            app.state.feed_follower,
            None if after is None else decode_feed_cursor(after),
            self.stopping,
        )
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.source:
            if isinstance(message, dict):
                self.messages.append(message)
        self.ended.set()

    @property
    def ids(self) -> list[int]:
        return [json.loads(message["data"])["id"] for message in self.messages]

    async def close(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, 5)


async def until(condition: Any, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_every_stream_gets_every_event_once_in_feed_order(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    start = await feed_cursor_now(client)
    await write_events(client, "before", 3)  # in the past for streams that start at `start`
    streams = [Stream(app, start) for _ in range(40)] + [Stream(app, None) for _ in range(10)]
    await until(lambda: app.state.feed_follower.listeners == 50)
    await asyncio.gather(write_events(client, "during_a", 5), write_events(client, "during_b", 5))
    expected = await feed_ids_after(client, start)
    assert len(expected) == 26
    await until(lambda: all(s.ids == expected for s in streams[:40]))
    # Streams without a cursor start at the follower's head: they get the tail of the feed,
    # gap-free, whatever their start.
    for stream in streams[40:]:
        assert stream.ids == expected[len(expected) - len(stream.ids) :]
        assert len(stream.ids) >= 20
    await asyncio.gather(*(stream.close() for stream in streams))
    await until(lambda: app.state.feed_follower.listeners == 0)


async def test_a_stream_ahead_of_the_follower_repeats_nothing(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow follower, so that its head is still behind what another worker has already sent.
    monkeypatch.setattr(follower_module, "POLL_SECONDS", 2.0)
    watching = Stream(app, None)
    await until(lambda: app.state.feed_follower.listeners == 1)
    await write_events(client, "ahead", 2)
    ahead = await feed_cursor_now(client)  # as if another worker had already sent these
    stream = Stream(app, ahead)
    await write_events(client, "after", 1)
    expected = await feed_ids_after(client, ahead)
    assert len(expected) == 2
    await until(lambda: len(watching.ids) == 6)
    await asyncio.sleep(0.5)
    assert stream.ids == expected
    await asyncio.gather(stream.close(), watching.close())


async def test_the_database_is_polled_once_however_many_streams_are_open(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        rates = []
        for streams_open in (1, 200):
            streams = [Stream(app, None) for _ in range(streams_open)]
            await until(lambda n=streams_open: app.state.feed_follower.listeners == n)
            statements = 0
            await asyncio.sleep(1.5)
            rates.append(statements)
            await asyncio.gather(*(stream.close() for stream in streams))
            await until(lambda: app.state.feed_follower.listeners == 0)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    one, many = rates
    assert one > 0  # the follower does poll
    assert many <= 2 * one + 4, rates


async def test_a_stream_too_far_behind_is_cut_off_and_resumes_without_a_gap(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    follower = FeedFollower(app.state.sessionmaker, buffer_events=4)
    start = await feed_cursor_now(client)
    stopping = anyio.Event()
    slow = follow_feed(app.state.sessionmaker, follower, decode_feed_cursor(start), stopping)
    await anext(slow)  # the retry: field

    async def next_message() -> Any:
        return await anext(slow)

    first = asyncio.create_task(next_message())  # joins the follower, waits for an event
    await until(lambda: follower.listeners == 1)
    await write_events(client, "flood", 6)  # 12 events: far more than the slow queue holds
    expected = await feed_ids_after(client, start)
    await until(lambda: follower.listeners == 0)  # dropped from the fan-out
    received = [await first]
    async for message in slow:  # what was queued, then the end of the stream
        received.append(message)
    got = [json.loads(message["data"])["id"] for message in received]
    assert 1 <= len(got) < len(expected)
    assert got == expected[: len(got)]
    resumed = Stream(app, received[-1]["id"])  # Last-Event-ID
    await until(lambda: got + resumed.ids == expected)
    await resumed.close()
    await follower.close()
