"""Every error a client can get, as application/problem+json (RFC 9457).

Domain code raises a `Problem` subclass, one per meaning; the handlers below render it. A
database that cannot serve (down, unreachable, read-only, full, or a lock or statement timeout)
is a 503 to retry, decided by `database_trouble`. Anything else unexpected becomes a bare 500
problem: the traceback goes to the log, never to the client.
"""

import enum
import logging
import socket
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("service.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


PROBLEM_TYPE_PREFIX = "urn:roadmap:problem:"

# One scheme for every problem `type`, whoever refuses the request: the service's own problems
# name their meaning (`transition-not-allowed`), and a refusal that only an HTTP status
# describes (a path no route serves, a body or headers too large, a crash) is named after that
# status, here or else from its reason phrase ("Not Acceptable" → `not-acceptable`). Never
# "about:blank", so a client can dispatch on `type` alone.
_STATUS_PROBLEMS: dict[int, tuple[str, str]] = {
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("content-too-large", "Content too large"),  # RFC 9110's name for 413
    431: ("headers-too-large", "Request header fields too large"),
    500: ("internal-error", "Internal server error"),
}


def status_problem(status: int) -> tuple[str, str]:
    """The `type` and `title` of a problem that an HTTP status alone describes."""
    slug, title = _STATUS_PROBLEMS.get(status, (None, None))
    phrase = HTTPStatus(status).phrase
    slug = slug or phrase.lower().replace(" ", "-").replace("'", "")
    return PROBLEM_TYPE_PREFIX + slug, title or phrase


class Problem(Exception):
    status: int = 500
    slug: str | None = None  # None: named after the status (status_problem)
    title: str | None = None

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug if self.slug else status_problem(self.status)[0]


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict"


class TransitionNotAllowed(Conflict):
    slug = "transition-not-allowed"
    title = "Transition not allowed"


class DecisionNotAllowed(Conflict):
    """Some of a decision's status changes cannot be made; `errors` names each."""

    slug = "decision-not-allowed"
    title = "Decision not allowed"


class CorrectionNotAllowed(Conflict):
    """Only the latest status change can be voided; `latest_status_event` names it."""

    slug = "correction-not-allowed"
    title = "Correction not allowed"


class InvalidInput(Problem):
    """Well-formed input that breaks a rule the schema cannot express."""

    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class BoardClosed(Problem):
    """The status board asked for by a script while reads need a key (a browser gets a page
    saying so)."""

    status = 403
    slug = "board-closed"
    title = "Board closed"


class ProblemDocument(BaseModel):
    """The body of every error response, declared in the OpenAPI document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """The problem document; without a `type_`, the one the status names (status_problem)."""
    status_type, status_title = status_problem(status)
    body = {
        "type": type_ or status_type,
        "title": title or status_title,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(
        jsonable_encoder(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def render_problem(problem: Problem) -> JSONResponse:
    return problem_response(
        problem.status,
        problem.detail,
        type_=problem.type,
        title=problem.title,
        headers=problem.headers,
        **problem.extensions,
    )


async def _handle_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return render_problem(exc)


async def _handle_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(exc.status_code, detail, headers=exc.headers)


def _describe_validation_error(error: dict[str, Any]) -> dict[str, Any]:
    # Echo where and why, not the rejected input: it may be large or sensitive.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}


def _summary(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    if error["type"] == "json_invalid":
        return "the body is not valid JSON"
    if error["type"] == "model_attributes_type" and error["loc"] == ["body"]:
        return "the body must be a JSON object (send Content-Type: application/json)"
    return f"{where}: {error['msg']}"


async def _handle_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_describe_validation_error(e) for e in exc.errors()]
    return problem_response(
        422,
        "The request is not valid: " + "; ".join(_summary(e) for e in errors)[:1000],
        type_=PROBLEM_TYPE_PREFIX + "validation",
        title="Invalid request",
        errors=errors,
    )


class DatabaseTrouble(enum.Enum):
    """Why the database could not serve a request, when the request is not at fault."""

    BUSY = "busy"  # it works, but this request waited too long for a lock or a connection
    UNAVAILABLE = "unavailable"  # it cannot be reached, or cannot write


# PostgreSQL SQLSTATEs. Classes 08 (connection exception), 53 (insufficient resources: disk
# full, out of memory, too many connections), 57P (shutting down, starting up, terminated)
# and 58 (I/O error); 25006: a standby, or a database set read-only. Everything else, above
# all class 23 (integrity) and 42 (bad SQL), is an answer or a bug, not an outage.
# lock_timeout, statement_timeout; and a deadlock or serialization failure, which the service's
# lock order is meant to rule out, but which a retry resolves if it ever happens: a 503 to
# retry, not an "internal error".
_PG_BUSY = frozenset({"55P03", "57014", "40P01", "40001"})
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")
_PG_UNAVAILABLE = frozenset({"25006"})

# SQLite primary result codes (the low byte of sqlite3.Error.sqlite_errorcode): SQLITE_ERROR,
# the code of a bad statement or a missing table, is not among them.
_SQLITE_TROUBLE = {
    5: DatabaseTrouble.BUSY,  # SQLITE_BUSY: "database is locked" after the busy timeout
    6: DatabaseTrouble.BUSY,  # SQLITE_LOCKED: "database table is locked"
    8: DatabaseTrouble.UNAVAILABLE,  # SQLITE_READONLY: "attempt to write a readonly database"
    10: DatabaseTrouble.UNAVAILABLE,  # SQLITE_IOERR: "disk I/O error"
    13: DatabaseTrouble.UNAVAILABLE,  # SQLITE_FULL: "database or disk is full"
    14: DatabaseTrouble.UNAVAILABLE,  # SQLITE_CANTOPEN: "unable to open database file"
}

# Failing to connect surfaces as the socket's own error, not wrapped by SQLAlchemy: refused,
# reset, timed out, a host name that does not resolve. A missing Unix socket (PostgreSQL
# stopped) is a bare FileNotFoundError, told from a bug only by where it was raised.
_NETWORK_ERRORS = (ConnectionError, TimeoutError, socket.gaierror)
_DRIVER_PACKAGES = frozenset({"asyncpg", "aiosqlite", "sqlalchemy"})


def _raised_by_database_driver(exc: BaseException) -> bool:
    return any(
        str(frame.f_globals.get("__name__", "")).partition(".")[0] in _DRIVER_PACKAGES
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def _postgresql_trouble(sqlstate: str) -> DatabaseTrouble | None:
    if sqlstate in _PG_BUSY:
        return DatabaseTrouble.BUSY
    if sqlstate in _PG_UNAVAILABLE or sqlstate.startswith(_PG_UNAVAILABLE_CLASSES):
        return DatabaseTrouble.UNAVAILABLE
    return None


def database_trouble(exc: BaseException) -> DatabaseTrouble | None:
    """Whether `exc` is the database failing to serve, to be retried later, rather than a bug.

    Decided by the error's code where the driver gives one (asyncpg's SQLSTATE, sqlite3's
    result code), never by its class alone: sqlite3 raises OperationalError for a locked
    database and for a syntax error alike.
    """
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # the pool stayed exhausted
        return DatabaseTrouble.BUSY
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:  # SQLAlchemy found the connection dead and dropped it
            return DatabaseTrouble.UNAVAILABLE
        return database_trouble(exc.orig) if exc.orig is not None else None
    sqlstate = getattr(exc, "sqlstate", None)  # asyncpg's errors and SQLAlchemy's wrappers
    if isinstance(sqlstate, str):
        return _postgresql_trouble(sqlstate)
    sqlite_code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return _SQLITE_TROUBLE.get(sqlite_code & 0xFF)
    if isinstance(exc, OSError) and (
        isinstance(exc, _NETWORK_ERRORS) or _raised_by_database_driver(exc)
    ):
        return DatabaseTrouble.UNAVAILABLE
    return None


class DatabaseBusy(Problem):
    status = 503
    slug = "database-busy"
    title = "Database busy"


class DatabaseUnavailable(Problem):
    status = 503
    slug = "database-unavailable"
    title = "Database unavailable"


def database_problem(trouble: DatabaseTrouble) -> Problem:
    if trouble is DatabaseTrouble.BUSY:
        # A lock or a connection frees within moments.
        return DatabaseBusy(
            "The database is busy: this request waited too long for a lock or a connection. "
            "Retry shortly.",
            headers={"Retry-After": "1"},
        )
    # A restart or a failover takes seconds; a full disk longer, but retrying costs little.
    # No promise that nothing was written: the connection may have died during the commit
    # (an Idempotency-Key makes the retry safe either way).
    return DatabaseUnavailable(
        "The database is unavailable at the moment. Retry later.",
        headers={"Retry-After": "5"},
    )


def brief(exc: BaseException) -> str:
    """The error in one line, for a log: its type and the first line of the driver's message."""
    # Not SQLAlchemy's message, which appends the statement and its parameters.
    cause = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def database_trouble_response(request: Request, exc: Exception) -> JSONResponse | None:
    """The 503 problem for the database failing to serve (logged), None for anything else."""
    trouble = database_trouble(exc)
    if trouble is None:
        return None
    # A warning without a traceback: an outage is an operator's matter, not a code path to debug.
    logger.warning(
        "database %s on %s %s: %s",
        trouble.value,
        request.method,
        request.url.path,
        brief(exc),
    )
    return render_problem(database_problem(trouble))


async def _handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    response = database_trouble_response(request, exc)
    if response is None:
        raise exc  # a bug, not an outage: on to _handle_unexpected, its 500 and its traceback
    return response


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Database trouble in a form not registered below (a driver error SQLAlchemy did not wrap)
    # is still a 503, though from here the server closes the client's connection afterwards.
    response = database_trouble_response(request, exc)
    if response is not None:
        return response
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "The server could not complete the request.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    # The errors a database outage raises, handled here rather than by the catch-all below:
    # Starlette re-raises what reaches the catch-all, and the server then drops the client's
    # keep-alive connection, so that a client retrying an outage would reconnect every time.
    for error in (sqlalchemy.exc.TimeoutError, sqlalchemy.exc.DBAPIError, OSError):
        app.add_exception_handler(error, _handle_database_error)
    app.add_exception_handler(Exception, _handle_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problems a route can return (the document renders every
    4xx and 5xx as application/problem+json, see service.openapi)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


class PreconditionFailed(Problem):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(Problem):
    status = 428
    slug = "precondition-required"
    title = "Precondition required"


class IdempotencyKeyInUse(Conflict):
    slug = "idempotency-key-in-use"
    title = "Idempotency key in use"


class IdempotencyKeyReused(InvalidInput):
    slug = "idempotency-key-reused"
    title = "Idempotency key reused"


class SecretShownOnce(Conflict):
    """A retry of a request whose answer held a secret: the secret is not kept to replay."""

    slug = "secret-shown-once"
    title = "Secret shown once"


class WebhookKeyUnset(Conflict):
    """A subscription asked of a production service that has no ROADMAP_WEBHOOK_SECRET_KEY."""

    slug = "webhook-key-unset"
    title = "Webhook key not set"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Forbidden"
