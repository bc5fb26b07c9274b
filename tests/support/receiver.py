"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 (a free port) in a thread
of its own, recording every request it gets (headers, raw body, path, arrival order, and what
it answered). It can be told to answer with another status (503 for an outage, 302 to see that
redirects are not followed) and to answer slowly, and changed back, while it runs.

    with Receiver() as receiver:
        url = receiver.url("/hook")
        ...
        receiver.wait_for(lambda got: len(got) >= 3)
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and the status the receiver answered it with."""

    order: int
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int
    arrived: float = field(repr=False)  # time.monotonic()

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str) -> Any:
        """The body, parsed, once the Standard Webhooks library has checked its signature
        (raises WebhookVerificationError otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "Receiver"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.owner._connected()
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # the name http.server calls
        self.server.owner._handle(self)

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._received: list[Received] = []
        self._connections = 0
        self._status = 200
        self._delay = 0.0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"receiver:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # Control, from the test.

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, status: int, *, delay: float | None = None) -> None:
        """Answer every request from now on with `status` (after `delay` seconds, if given)."""
        with self._lock:
            self._status = status
            if delay is not None:
                self._delay = delay

    def slow(self, delay: float) -> None:
        with self._lock:
            self._delay = delay

    @property
    def received(self) -> list[Received]:
        """Every request so far, in the order they arrived."""
        with self._lock:
            return list(self._received)

    @property
    def connections(self) -> int:
        """Connections accepted, requests or not (a TLS handshake counts too)."""
        with self._lock:
            return self._connections

    def to(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    def wait_for(
        self, condition: Callable[[list[Received]], bool], timeout: float = 30.0
    ) -> list[Received]:
        """Block until `condition(received)` holds; fail with what was received if it does not
        within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(list(self._received)):
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(r.path, r.headers.get("webhook-id"), r.status) for r in self._received]
                    raise AssertionError(f"receiver: condition not met within {timeout} s: {got}")
                self._changed.wait(min(left, 0.1))
            return list(self._received)

    def stop(self) -> None:
        self._stopping.set()  # cuts slow answers short
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # The server's side, from its threads.

    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._changed:
            status, delay = self._status, self._delay
            self._received.append(
                Received(
                    order=len(self._received),
                    method=handler.command,
                    path=handler.path,
                    headers={name.lower(): value for name, value in handler.headers.items()},
                    body=body,
                    status=status,
                    arrived=time.monotonic(),
                )
            )
            self._changed.notify_all()
        if delay:
            self._stopping.wait(delay)
        try:
            handler.send_response(status)
            if 300 <= status < 400:
                handler.send_header("Location", self.url("/redirected"))
            handler.send_header("Content-Length", "2")
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:
            pass  # the sender went away (a timeout, or a SIGKILLed server): nothing to answer
        handler.close_connection = True
