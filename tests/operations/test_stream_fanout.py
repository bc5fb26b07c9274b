"""Hundreds of live streams on a server with 4 workers, while writers write concurrently: each
stream receives every event once, in feed order (each worker's one follower fans the feed out
to all of its streams; audit.follower). A client that stops reading falls behind, is cut off,
and resumes with Last-Event-ID without a gap or a repeat."""

import asyncio
import codecs
import json
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11
import httpx
import pytest

from tests.support.builders import API, bearer
from tests.support.servers import LiveServer, start_server

pytestmark = pytest.mark.live

STREAMS = 240
PROGRAMMES = 12
STEPS = ("coordinated", "ministerially_approved", "supreme_council_approved")
# Then on, in the slow client's test: short events once the long ones have filled its socket's
# buffers, then more while it reads and resumes.
THEN_STEPS = ("in_implementation", "delayed")
MORE_STEPS = ("in_implementation", "delayed", "in_implementation", "delayed", "in_implementation")
LATE_STREAMS = 8  # open meanwhile, each resuming from the feed's newest event then
# The slow client's test: a stream more than this many events behind is cut off.
BUFFER_EVENTS = 20
LONG_NOTE = "n" * 10_000  # the longest a note may be: a few events fill a socket's buffers
# The slow client's socket: a small receive buffer (the kernel doubles it), and a small
# segment size, which it announces when it connects. The server sizes its send buffer by the
# peer's segments: some 4 MB for loopback's 64 kB ones, which would take hundreds of long
# events to fill (and as many times more to the other streams); 180 kB for 536-byte ones.
SLOW_RCVBUF = 4096
SLOW_MSS = 536
# A stream's SSE id is the event's feed cursor; the server may end it (the client is too far
# behind), and a client reconnects with Last-Event-ID as browsers do, but not endlessly.
MAX_RECONNECTS = 20
SECONDS = 30  # the longest any step waits


async def feed_so_far(http: httpx.AsyncClient, cursor: str) -> tuple[list[int], str]:
    """The ids of the events after `cursor`, and the cursor of the last."""
    ids: list[int] = []
    while True:
        page = (await http.get(f"{API}/events", params={"after": cursor, "limit": 500})).json()
        if not page["items"]:
            return ids, cursor
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]


async def feed_after(http: httpx.AsyncClient, cursor: str) -> list[int]:
    ids, _ = await feed_so_far(http, cursor)
    return ids


async def feed_end(http: httpx.AsyncClient) -> str:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"after": cursor} if cursor else {})}
        page = (await http.get(f"{API}/events", params=params)).json()
        if not page["items"]:
            assert cursor is not None
            return cursor
        cursor = page["next_cursor"]


@dataclass(eq=False)
class Received:
    """What one client got, over all its connections: the events' ids, and the SSE id (feed
    cursor) of the last one, which a reconnection sends as Last-Event-ID."""

    ids: list[int] = field(default_factory=list)
    last_event_id: str | None = None
    ends: int = 0  # how often the server ended the stream
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    _id: str | None = None
    _data: str | None = None

    def line(self, line: str) -> None:
        """One line of the stream (text/event-stream): a blank one dispatches the message."""
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if line and name == "id":
            self._id = value
        elif line and name == "data":
            self._data = value
        elif not line:
            if self._data is not None:  # the retry: message has no data, pings are comments
                self.ids.append(json.loads(self._data)["id"])
                self.last_event_id = self._id
            self._id = self._data = None

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.line(line)


async def listen(
    http: httpx.AsyncClient, after: str, received: Received, *, reconnect: bool = False
) -> None:
    """Follows the stream from `after`, or from the last event `received` has if any (with
    Last-Event-ID, which wins over `after`: the URL stays the same, as an EventSource's does).
    When the server ends the stream: reconnects so if told to, else stops."""
    while True:
        last = received.last_event_id
        headers = {"Last-Event-ID": last} if last is not None else {}
        async with http.stream(
            "GET", f"{API}/events/stream", params={"after": after}, headers=headers
        ) as stream:
            assert stream.status_code == 200
            received.opened.set()
            async for line in stream.aiter_lines():
                received.line(line)
        received.ends += 1
        if not reconnect:
            return
        assert received.ends <= MAX_RECONNECTS, "the stream keeps ending"


async def write(
    http: httpx.AsyncClient,
    code: str,
    steps: Iterable[str] = STEPS,
    note: str | None = None,
    *,
    create: bool = True,
) -> None:
    context = {"note": note} if note is not None else {}
    if create:
        made = await http.post(f"{API}/programs", json={"code": code, "title": code, **context})
        assert made.status_code == 201, made.text
    for status in steps:
        moved = await http.post(
            f"{API}/programs/{code}/transitions", json={"to_status": status, **context}
        )
        assert moved.status_code == 201, moved.text


@asynccontextmanager
async def clients(
    server: LiveServer, api_tokens: Mapping[str, str], streams: int
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """One client for the streams (a connection each), one for an editor that writes."""
    limits = httpx.Limits(max_connections=streams + 20, max_keepalive_connections=20)
    async with (
        httpx.AsyncClient(
            base_url=server.base_url, timeout=httpx.Timeout(60, read=None), limits=limits
        ) as readers,
        httpx.AsyncClient(
            base_url=server.base_url, timeout=60, headers=bearer(api_tokens["editor"])
        ) as editor,
    ):
        yield readers, editor


def raise_failures(tasks: Iterable[asyncio.Task[None]]) -> None:
    """A listener that failed says why (rather than only that its events are missing)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            task.result()


async def until_each_has(
    wanted: Iterable[tuple[Received, int]], listeners: list[asyncio.Task[None]]
) -> None:
    """Until each client has as many events as wanted, then a moment more: anything beyond
    would be a repeat, and would show."""
    wanted = list(wanted)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SECONDS
    while missing := [(len(got.ids), count) for got, count in wanted if len(got.ids) < count]:
        raise_failures(listeners)
        assert loop.time() < deadline, f"(received, expected): {sorted(set(missing))}"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    raise_failures(listeners)


async def until_all_have(
    received: Iterable[Received], count: int, listeners: list[asyncio.Task[None]]
) -> None:
    await until_each_has(((got, count) for got in received), listeners)


async def stop(tasks: Iterable[asyncio.Task[None]]) -> None:
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def assert_clean(server: LiveServer) -> None:
    assert server.stop() == 0
    assert "Traceback" not in server.log.read_text()


async def test_every_stream_gets_every_event_of_concurrent_writers_once_in_order(
    live_database: str, api_tokens: Mapping[str, str], tmp_path: Path
) -> None:
    server = start_server(live_database, tmp_path / "server.log", workers=4)
    listeners: list[asyncio.Task[None]] = []
    try:
        async with clients(server, api_tokens, STREAMS) as (readers, editor):
            start = await feed_end(editor)
            received = [Received() for _ in range(STREAMS)]
            listeners = [asyncio.create_task(listen(readers, start, got)) for got in received]
            await asyncio.wait_for(asyncio.gather(*(got.opened.wait() for got in received)), 60)
            await asyncio.gather(*(write(editor, f"fanout_{n}") for n in range(PROGRAMMES)))
            expected = await feed_after(editor, start)
            assert len(expected) == PROGRAMMES * (1 + len(STEPS))
            await until_all_have(received, len(expected), listeners)
            for got in received:
                assert got.ids == expected
    finally:
        await stop(listeners)
        assert_clean(server)


class SlowClient:
    """A stream read through a bare socket with a small receive buffer, only when told to:
    while it does not read, the server's writes to it block once the socket's buffers are
    full, and the events that follow wait in the stream's queue until it overflows."""

    def __init__(self, base_url: str, after: str) -> None:
        self._address = urlsplit(base_url)
        self._target = f"{API}/events/stream?{urlencode({'after': after})}"
        self._http = h11.Connection(h11.CLIENT)
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._partial = ""
        self._socket = socket.socket()
        self.received = Received()

    async def open(self) -> None:
        """Sends the request and reads the response up to the stream's first message (its
        retry: field), which the server sends just before the stream joins its follower."""
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SLOW_MSS)
        self._socket.setblocking(False)
        loop = asyncio.get_running_loop()
        host, port = self._address.hostname, self._address.port
        await asyncio.wait_for(loop.sock_connect(self._socket, (host, port)), SECONDS)
        request = h11.Request(
            method="GET",
            target=self._target,
            headers=[("Host", self._address.netloc), ("Accept", "text/event-stream")],
        )
        await loop.sock_sendall(self._socket, self._http.send(request))
        response: h11.Response | None = None
        while response is None or "retry:" not in self._partial:
            for event in await self._receive():
                if isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    self._partial += self._text.decode(bytes(event.data))
                else:
                    raise AssertionError(event)
        assert response.status_code == 200
        self.received.opened.set()

    async def read_to_the_end(self) -> None:
        """Reads all the server sends, until it ends the response (a clean end: a response
        cut short raises h11.RemoteProtocolError). Pings come every 15 s: bound it."""
        while True:
            for event in await self._receive():
                if isinstance(event, h11.EndOfMessage):
                    self.received.ends += 1
                    return
                assert isinstance(event, h11.Data), event
                lines = (self._partial + self._text.decode(bytes(event.data))).split("\n")
                self._partial = lines.pop()
                self.received.lines(line.removesuffix("\r") for line in lines)

    async def _receive(self) -> list[h11.Event]:
        data = await asyncio.wait_for(
            asyncio.get_running_loop().sock_recv(self._socket, 65536), SECONDS
        )
        self._http.receive_data(data)  # b"": the connection closed
        events: list[h11.Event] = []
        while (event := self._http.next_event()) is not h11.NEED_DATA:
            assert isinstance(event, h11.Event), event
            events.append(event)
        return events

    def close(self) -> None:
        self._socket.close()


async def test_a_client_that_stops_reading_is_cut_off_and_resumes_without_a_gap(
    live_database: str, api_tokens: Mapping[str, str], tmp_path: Path
) -> None:
    """One slow client among hundreds of streams: it stops reading while writers write long
    events, so its queue on its worker overflows. Once it reads again, the server sends what
    it had queued and ends the stream; the client reconnects with Last-Event-ID while writers
    write on, and gets the rest. Nobody misses an event or gets one twice.

    The other streams reconnect too when the server ends them: with so small a buffer, any
    stream that its worker cannot serve fast enough for a moment (hundreds share two cores
    here) falls that far behind and is cut off as well."""
    server = start_server(
        live_database,
        tmp_path / "server.log",
        workers=4,
        extra_env={"ROADMAP_STREAM_BUFFER_EVENTS": str(BUFFER_EVENTS)},
    )
    listeners: list[asyncio.Task[None]] = []
    writers: list[asyncio.Task[None]] = []
    slow: SlowClient | None = None
    try:
        async with clients(server, api_tokens, STREAMS + 1 + LATE_STREAMS) as (readers, editor):
            start = await feed_end(editor)
            slow = SlowClient(server.base_url, start)
            await slow.open()
            received = [Received() for _ in range(STREAMS)]
            listeners = [
                asyncio.create_task(listen(readers, start, got, reconnect=True)) for got in received
            ]
            await asyncio.wait_for(asyncio.gather(*(got.opened.wait() for got in received)), 60)

            # The slow client reads nothing while writers write long events, a dozen of which
            # fill its socket's buffers, then short ones: BUFFER_EVENTS more overflow its queue.
            async def flood_with(code: str) -> None:
                await write(editor, code, note=LONG_NOTE)
                await write(editor, code, THEN_STEPS, create=False)

            await asyncio.gather(*(flood_with(f"slow_{n}") for n in range(PROGRAMMES)))
            flood = await feed_after(editor, start)
            assert len(flood) == PROGRAMMES * (1 + len(STEPS) + len(THEN_STEPS))
            # Every stream has the flood, and a second later the slow client's follower has
            # surely fanned it out too, however long it took to poll.
            await until_all_have(received, len(flood), listeners)

            # Writers write on while the slow client reads what the server sent it, up to the
            # end of the stream: the cut-off, before the flood's end.
            writers = [
                asyncio.create_task(write(editor, f"slow_{n}", MORE_STEPS, create=False))
                for n in range(PROGRAMMES)
            ]
            # Meanwhile clients resume from the newest event they can read in the feed: their
            # worker's follower, which polls, is often behind it, and hands their queue
            # events they already have.
            late: list[tuple[int, Received]] = []

            async def join_late() -> None:
                for _ in range(LATE_STREAMS):
                    ids, newest = await feed_so_far(editor, start)
                    late.append((len(ids), Received(last_event_id=newest)))
                    listeners.append(
                        asyncio.create_task(listen(readers, start, late[-1][1], reconnect=True))
                    )
                    await asyncio.sleep(0.1)

            writers.append(asyncio.create_task(join_late()))
            await asyncio.wait_for(slow.read_to_the_end(), SECONDS)  # else never cut off
            cut = list(slow.received.ids)
            assert 0 < len(cut) < len(flood), "the stream was not cut off"
            assert cut == flood[: len(cut)]
            assert slow.received.last_event_id is not None
            # It resumes where it stopped, as a browser does: after= says where it started,
            # Last-Event-ID (which wins) what it got.
            listeners.append(
                asyncio.create_task(listen(readers, start, slow.received, reconnect=True))
            )
            await asyncio.wait_for(asyncio.gather(*writers), SECONDS)

            expected = await feed_after(editor, start)
            assert len(expected) == len(flood) + PROGRAMMES * len(MORE_STEPS)
            await until_each_has(
                [
                    *((got, len(expected)) for got in [*received, slow.received]),
                    *((got, len(expected) - known) for known, got in late),
                ],
                listeners,
            )
            assert slow.received.ids == expected
            for known, got in late:
                assert got.ids == expected[known:]
            assert slow.received.ends >= 1
            for got in received:
                assert got.ids == expected
    finally:
        if slow is not None:
            slow.close()
        await stop([*writers, *listeners])
        assert_clean(server)
