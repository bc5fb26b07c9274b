"""HTTP at the edges, before any route runs: HEAD, oversized headers, refused CORS preflights."""

from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import problem_response


def route_path(scope: Scope) -> str:
    """The request's path below the root path (a proxy's prefix), as the router matches it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 32 * 1024  # all names and values together, as proxies commonly allow


class HeadAsGet:
    """HEAD is answered wherever GET is (RFC 9110 §9.3.2): the GET route runs and its status
    and headers go out without the body. A streamed answer is stopped once its headers are
    sent, as if the client had gone away, so HEAD on an export or the live stream is cheap."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server reads the original scope's method to know it must send no body.
        as_get = {**scope, "method": "GET"}
        headers_sent = False

        async def receive_until_answered() -> Message:
            if headers_sent:
                return {"type": "http.disconnect"}
            return await receive()

        async def send_without_body(message: Message) -> None:
            nonlocal headers_sent
            if headers_sent:
                return
            await send(message)
            if message["type"] == "http.response.start":
                headers_sent = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            await self.app(as_get, receive_until_answered, send_without_body)
        finally:
            # What routing found, for the request log and metrics (service.metrics.route_template)
            for key in ("route", "path_params"):
                if key in as_get:
                    scope[key] = as_get[key]


class HeaderLimits:
    """431 for a request with more than MAX_HEADER_COUNT headers or MAX_HEADER_BYTES of them:
    nothing legitimate sends that many, and every one is work for every layer below."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES:
                response = problem_response(
                    431,
                    f"The request has {len(headers)} headers of {size} bytes; at most "
                    f"{MAX_HEADER_COUNT} headers of {MAX_HEADER_BYTES} bytes are accepted.",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as a problem like every other
    refusal (Starlette answers text/plain)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode(errors="replace")
        headers: dict[str, Any] = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-type")
        }
        return problem_response(
            response.status_code, f"CORS preflight refused: {reason}.", headers=headers
        )
