"""Hundreds of live streams on a server with 4 workers, while writers write concurrently: each
stream receives every event once, in feed order (each worker's one follower fans the feed out
to all of its streams; audit.follower)."""

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.builders import API, bearer
from tests.support.servers import start_server

pytestmark = pytest.mark.live

STREAMS = 240
PROGRAMMES = 12
STEPS = ("coordinated", "ministerially_approved", "supreme_council_approved")


async def feed_after(http: httpx.AsyncClient, cursor: str) -> list[int]:
    ids: list[int] = []
    while True:
        page = (await http.get(f"{API}/events", params={"after": cursor, "limit": 500})).json()
        if not page["items"]:
            return ids
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]


async def feed_end(http: httpx.AsyncClient) -> str:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"after": cursor} if cursor else {})}
        page = (await http.get(f"{API}/events", params=params)).json()
        if not page["items"]:
            assert cursor is not None
            return cursor
        cursor = page["next_cursor"]


async def listen(
    http: httpx.AsyncClient, after: str, received: list[int], opened: asyncio.Event
) -> None:
    async with http.stream("GET", f"{API}/events/stream", params={"after": after}) as stream:
        assert stream.status_code == 200
        opened.set()
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                received.append(json.loads(line.removeprefix("data:").strip())["id"])


async def write(http: httpx.AsyncClient, code: str) -> None:
    made = await http.post(f"{API}/programs", json={"code": code, "title": code})
    assert made.status_code == 201, made.text
    for status in STEPS:
        moved = await http.post(f"{API}/programs/{code}/transitions", json={"to_status": status})
        assert moved.status_code == 201, moved.text


async def test_every_stream_gets_every_event_of_concurrent_writers_once_in_order(
    live_database: str, api_tokens: Mapping[str, str], tmp_path: Path
) -> None:
    server = start_server(live_database, tmp_path / "server.log", workers=4)
    listeners: list[asyncio.Task[None]] = []
    try:
        limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=20)
        async with (
            httpx.AsyncClient(
                base_url=server.base_url, timeout=httpx.Timeout(60, read=None), limits=limits
            ) as readers,
            httpx.AsyncClient(
                base_url=server.base_url, timeout=60, headers=bearer(api_tokens["editor"])
            ) as editor,
        ):
            start = await feed_end(editor)
            received: list[list[int]] = [[] for _ in range(STREAMS)]
            opened = [asyncio.Event() for _ in range(STREAMS)]
            listeners = [
                asyncio.create_task(listen(readers, start, got, ready))
                for got, ready in zip(received, opened, strict=True)
            ]
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in opened)), 60)
            await asyncio.gather(*(write(editor, f"fanout_{n}") for n in range(PROGRAMMES)))
            expected = await feed_after(editor, start)
            assert len(expected) == PROGRAMMES * (1 + len(STEPS))

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while any(len(got) < len(expected) for got in received):
                assert loop.time() < deadline, sorted({len(got) for got in received})
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)  # anything more would be a repeat: give it time to show
            for got in received:
                assert got == expected
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        assert server.stop() == 0
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log
