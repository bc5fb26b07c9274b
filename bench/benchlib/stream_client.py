"""Many live streams from one process: the client side of the fan-out measurement (feeds.py).

    python bench/benchlib/stream_client.py --port PORT --out RESULTS.json [--max-seconds S]

Run by the harness in a process of its own (so that reading 2,000 sockets does not slow the
harness's clock or its requests), with the harness's interpreter. It opens plain HTTP/1.1
connections to GET /api/v1/events/stream on 127.0.0.1 (asyncio sockets, no HTTP library: a
stream costs a few kilobytes here), reads the chunked Server-Sent Events and notes, for every
event, when it arrived (time.monotonic(), which is the system's CLOCK_MONOTONIC and so
comparable with the harness's). Commands arrive on stdin, one a line; every answer is one JSON
line on stdout:

    open N   open streams until N are open (each counts once its first message, `retry:`, has
             arrived); answers {"open": N, "failed": F, "seconds": S, "errors": [...]}
    count    answers {"open": N, "events": E}: streams still open, events received in all
    stop     closes every stream, writes the arrivals to --out and answers {"closed": N}

After --max-seconds, or when stdin closes, it stops as if told to: the harness cannot leave
connections behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from dataclasses import dataclass, field

OPENING_AT_ONCE = 100  # connections being set up concurrently
OPEN_TIMEOUT_S = 30.0


@dataclass
class Stream:
    number: int
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    # (event id, arrival time) in the order received
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    opened: bool = False
    ended: str = ""  # why it ended before it was closed, if it did


class Client:
    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.streams: list[Stream] = []
        self.events = 0

    @property
    def open_count(self) -> int:
        return sum(1 for stream in self.streams if stream.opened and not stream.ended)

    async def open(self, wanted: int) -> dict[str, object]:
        started = time.monotonic()
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        errors: list[str] = []

        async def one(stream: Stream) -> None:
            async with gate:
                ready = asyncio.get_running_loop().create_future()
                stream.task = asyncio.create_task(self._read(stream, ready))
                try:
                    await asyncio.wait_for(asyncio.shield(ready), OPEN_TIMEOUT_S)
                except Exception as exc:  # reported, never raised
                    if len(errors) < 5:
                        errors.append(f"stream {stream.number}: {type(exc).__name__}: {exc}")
                    stream.ended = stream.ended or "did not open"

        new = [Stream(len(self.streams) + i) for i in range(max(0, wanted - self.open_count))]
        self.streams += new
        await asyncio.gather(*(one(stream) for stream in new))
        failed = sum(1 for stream in new if not stream.opened)
        return {
            "open": self.open_count,
            "failed": failed,
            "seconds": round(time.monotonic() - started, 3),
            "errors": errors,
        }

    async def _read(self, stream: Stream, ready: asyncio.Future[None]) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
            stream.writer = writer
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise RuntimeError(status.decode(errors="replace"))
            chunked = b"transfer-encoding: chunked" in head.lower()
            buffer = b""
            while True:
                if chunked:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        break
                    data = (await reader.readexactly(size + 2))[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        break
                arrived = time.monotonic()
                buffer += data
                if buffer.endswith(b"\r"):
                    continue
                text = buffer.replace(b"\r\n", b"\n")
                *messages, rest = text.split(b"\n\n")
                buffer = rest
                for message in messages:
                    if not stream.opened:  # the first message: the `retry:` field
                        stream.opened = True
                        if not ready.done():
                            ready.set_result(None)
                    self._record(stream, message, arrived)
            stream.ended = "the server ended the stream"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported, not raised
            stream.ended = stream.ended or f"{type(exc).__name__}: {exc}"[:200]
        finally:
            if not ready.done():
                ready.set_exception(RuntimeError(stream.ended or "ended before opening"))

    def _record(self, stream: Stream, message: bytes, arrived: float) -> None:
        data = b"\n".join(
            line[5:].lstrip(b" ") for line in message.split(b"\n") if line.startswith(b"data:")
        )
        if not data:
            return  # retry:, comments (pings)
        try:
            event_id = int(json.loads(data)["id"])
        except (ValueError, KeyError, TypeError):
            return
        stream.arrivals.append((event_id, arrived))
        self.events += 1

    async def close(self) -> int:
        closed = 0
        for stream in self.streams:
            if stream.writer is not None:
                stream.writer.close()
                closed += 1
        tasks = [stream.task for stream in self.streams if stream.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in self.streams:
            if stream.writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(stream.writer.wait_closed(), 1)
        return closed


def _say(answer: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    client = Client("127.0.0.1", args.port, args.path)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    deadline = time.monotonic() + args.max_seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = await asyncio.wait_for(commands.readline(), left)
            except TimeoutError:
                break
            if not line:
                break  # the harness went away
            verb, _, rest = line.decode().strip().partition(" ")
            if verb == "open":
                _say(await client.open(int(rest)))
            elif verb == "count":
                _say({"open": client.open_count, "events": client.events})
            elif verb == "stop":
                break
    finally:
        closed = await client.close()
        arrivals = {
            "streams": [
                {"arrivals": stream.arrivals, "opened": stream.opened, "ended": stream.ended}
                for stream in client.streams
            ]
        }
        with open(args.out, "w") as out:  # noqa: ASYNC230 - once, at the end
            json.dump(arrivals, out)
        _say({"closed": closed})


def raise_file_limit() -> tuple[int, int]:
    """The soft limit on open files raised to the hard one; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/v1/events/stream")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=300)
    arguments = parser.parse_args()
    raise_file_limit()
    try:
        import uvloop  # the service's own event loop (uvicorn[standard]), if it is here
    except ImportError:
        asyncio.run(main(arguments))
    else:
        uvloop.run(main(arguments))
