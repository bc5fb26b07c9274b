"""Stopping the server under live streams: each stream ends after a complete event, as a
complete response, the process exits 0 within seconds and logs no error."""

import asyncio
import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.support.builders import API, bearer, create_program
from tests.support.servers import start_server

pytestmark = pytest.mark.live  # real servers, stopped with SIGTERM

EVENT_END = "\r\n\r\n"  # sse-starlette's separator: a blank line ends each message


def messages(text: str) -> list[dict[str, str]]:
    """The stream's messages as field → value; comments (pings) left out."""
    parsed = []
    for block in text.split(EVENT_END):
        fields = {}
        for line in block.split("\r\n"):
            name, _, value = line.partition(":")
            if line and name:  # a line starting with ":" is a comment
                fields[name] = value.removeprefix(" ")
        if fields:
            parsed.append(fields)
    return parsed


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_ends_live_streams_after_a_complete_event(
    live_database: str, api_tokens: Mapping[str, str], tmp_path: Path, workers: int
) -> None:
    log = tmp_path / "server.log"
    server = start_server(live_database, log, workers=workers)
    try:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
            http.stream("GET", f"{API}/events/stream") as stream,
        ):
            assert stream.status_code == 200
            chunks = stream.aiter_text()
            received = await anext(chunks)  # the stream has begun: its retry: comes first
            editor = httpx.AsyncClient(
                base_url=server.base_url, headers=bearer(api_tokens["editor"]), timeout=10
            )
            async with editor:
                await create_program(editor, f"stopping_{workers}", sector="energy")
            while "data:" not in received:
                received += await asyncio.wait_for(anext(chunks), timeout=10)
            server.process.send_signal(signal.SIGTERM)  # as an orchestrator stops a container
            stopped_at = time.monotonic()
            # A clean end of the response: a cut one raises httpx.RemoteProtocolError here.
            async for chunk in chunks:
                received += chunk
        assert server.process.wait(timeout=10) == 0
        assert time.monotonic() - stopped_at < 5
    finally:
        server.stop(signal.SIGKILL)
    assert received.endswith(EVENT_END), received[-200:]
    sent = messages(received)
    assert sent[0] == {"retry": "3000"}  # how long a browser waits before reconnecting
    events = [message for message in sent if "data" in message]
    assert [json.loads(event["data"])["program"] for event in events] == [f"stopping_{workers}"]
    assert all(event["id"] for event in events)
    output = log.read_text()
    assert '"level": "ERROR"' not in output, output
    assert "Traceback" not in output, output
    assert "color_message" not in output  # uvicorn's copy of its messages, for terminals
