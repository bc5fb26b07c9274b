"""Every error a client can get, as application/problem+json (RFC 9457).

Domain code raises a `Problem` subclass, one per meaning; the handlers below render it. Anything
unexpected becomes a bare 500 problem: the traceback goes to the log, never to the client.
"""

import logging
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


class Problem(Exception):
    status: int = 500
    slug: str | None = None  # None: the HTTP status says it all ("about:blank")
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
        return f"urn:roadmap:problem:{self.slug}" if self.slug else "about:blank"


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


class InvalidInput(Problem):
    """Well-formed input that breaks a rule the schema cannot express."""

    status = 422
    slug = "invalid-input"
    title = "Invalid input"


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
    type_: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
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
        type_="urn:roadmap:problem:validation",
        title="Invalid request",
        errors=errors,
    )


async def _handle_pool_exhausted(request: Request, _exc: Exception) -> JSONResponse:
    logger.warning("no database connection came free for %s %s", request.method, request.url.path)
    return problem_response(
        503,
        "The service is busy: no database connection came free in time. Retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "The server could not complete the request.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    # SQLAlchemy's TimeoutError: the connection pool stayed exhausted (db.POOL_TIMEOUT_S).
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _handle_pool_exhausted)
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


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Forbidden"
