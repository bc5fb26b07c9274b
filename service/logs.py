"""Logs and request observation: one JSON line per request on stdout (and a Prometheus sample),
JSON for application logs too (ROADMAP_LOG_FORMAT=text for humans), and a request id accepted
from the proxy or made up, echoed back.

Secrets never reach a log line: the request line names the key (its name, not its token) and
no header or body is logged.
"""

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.log_config import REQUEST_ID
from service.metrics import record_request, route_template

REQUEST_ID_HEADER = b"x-request-id"
# What we accept from a proxy as a request id: short, printable, no room for log injection.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

logger = logging.getLogger("roadmap.requests")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return str(candidate)
    return uuid.uuid4().hex


class RequestLog:
    """Tags each request with an id (X-Request-ID), echoes it, and when done logs one line and
    records the request's metrics (service.metrics)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_set = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        live_stream = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, live_stream
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                live_stream = content_type.startswith("text/event-stream")
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields = {
                "request_id": request_id,
                "method": scope["method"],
                "route": route_template(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            # A live stream lasts as long as its client listens: its duration says nothing of
            # the service's speed and would drown the latency histogram, so only its count is
            # recorded.
            record_request(
                scope["method"],
                fields["route"],
                status,
                fields["duration_ms"] / 1000,
                observe_latency=not live_stream,
            )
            key = scope.get("state", {}).get("caller_name")
            if key:
                fields["key"] = key
            logger.info("%s %s %s", scope["method"], fields["route"], status, extra=fields)
        # Only when nothing escaped: an exception that does is logged by the server after this
        # ("Exception in ASGI application"), and that line should carry the id too.
        REQUEST_ID.reset(request_id_set)
