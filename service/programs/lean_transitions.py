"""Transitions on the driver, before routing: the write path of POST
/api/v1/programs/{code}/transitions on PostgreSQL.

Through the framework a transition cost ~3.5 ms of a worker's CPU, against ~0.4 ms for the
same change made on raw asyncpg (bench/RESULTS.md): dependency solving, SQLAlchemy's execution
path for every statement, the ORM's unit of work. Here the change is made by the same rules
(service.apply_transition, which chains the event by audit.service.append_event), locked and
read by the same statements (LOCK_PROGRAM, here in the key lookup's statement, then
PROGRAM_WITH_HEAD_BY_CODE, for the reasons lock_program gives), compiled once and run on
asyncpg in one transaction on a connection of the engine's pool (db.driver_transaction). The
event's insert and the programme's update are one statement (WRITE_STATUS_CHANGE), and the
answer is the route's own (router.status_changed, unit_of_work.committed_answer), given only
after the commit.

Only the common case comes here: a POST with a JSON body, a Bearer key, no query string (so
no dry run) and no Idempotency-Key. Everything else goes to the route unchanged, and so does
whatever this cannot settle before it writes: a body that fails validation, a key that is
unknown, revoked or not an editor's, a missing If-Match that the server requires. What it refuses
once the programme is read (404, 409, 412, 422) it answers itself, with the problem the route
raises; the database failing to serve is a 503 with Retry-After, as on the route.
tests/programs/test_lean_transitions.py holds the two paths to the same events and answers.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import Dialect, bindparam, insert, or_, select, update
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth.roles import Role, role_allows
from service.auth.service import KEY_BY_ID, key_holder, last_use_is_stale
from service.auth.tokens import ParsedKey, hash_secret, parse_key
from service.clock import today_utc
from service.db import driver_transaction, first_row_of
from service.edges import route_path
from service.errors import (
    NotFound,
    Problem,
    database_trouble_response,
    problem_response,
    render_problem,
)
from service.models.events import Event
from service.models.keys import ApiKey
from service.models.programs import Program
from service.programs.router import router, status_changed, transition_program
from service.programs.schemas import TransitionRequest
from service.programs.service import (
    LOCK_PROGRAM,
    PROGRAM_WITH_HEAD_BY_CODE,
    Actor,
    LockedProgram,
    apply_transition,
    check_if_match,
    opened_or_closed,
    progress_of,
)
from service.schemas import CODE_PATTERN
from service.unit_of_work import committed_answer

# The event's columns but those the database fills (its id, and the writer's transaction id),
# and the programme's that a status change sets (record_status_change, append_event): what the
# ORM's flush writes. tests/programs/test_lean_transitions.py compares every column of both.
_EVENT_COLUMNS = tuple(
    column.name
    for column in Event.__table__.columns
    if not column.primary_key and column.server_default is None
)
# None of these programme columns is indexed, so the update is a HOT one (migration 0012;
# tests/operations/test_migrations.py holds it so).
STATUS_CHANGE_COLUMNS = ("status", "status_effective_date", "version", "updated_at")
_NEW_EVENT = (
    insert(Event)
    .values({name: bindparam(f"event_{name}") for name in _EVENT_COLUMNS})
    .returning(Event.id)
    .cte("new_event")
)
WRITE_STATUS_CHANGE = (
    update(Program)
    .where(Program.id == bindparam("program_id"))
    .values({name: bindparam(f"program_{name}") for name in STATUS_CHANGE_COLUMNS})
    .add_cte(_NEW_EVENT)
    .returning(select(_NEW_EVENT.c.id).scalar_subquery())
)
# The key (KEY_BY_ID) and the programme's write lock (LOCK_PROGRAM) in one round trip: the
# key's row needs no snapshot taken after the lock is granted; the programme's does, so it is
# read by the next statement (see lock_program). Only a live editor's key with its secret takes
# the lock (the lock function runs for the rows found): any other caller must not queue among
# the programme's writers, and goes to the route, which refuses it.
_EDITOR_ROLES = [role for role in Role if role_allows(role, Role.EDITOR)]
KEY_AND_LOCK = KEY_BY_ID.add_columns(*LOCK_PROGRAM.selected_columns).where(
    ApiKey.secret_hash == bindparam("secret_hash"),
    ApiKey.revoked_at.is_(None),
    # Equalities rather than IN, which the driver's statements cannot have (db.first_row_of).
    or_(*(ApiKey.role == role.value for role in _EDITOR_ROLES)),
)
# PROGRAM_WITH_HEAD_BY_CODE's columns: the programme's, then its roadmap's code, its progress
# (five) and its newest event's hash.
_PROGRAM_KEYS = tuple(
    Program.__mapper__.get_property_by_column(column).key
    for column in select(Program).selected_columns
)

_CODE = re.compile(CODE_PATTERN)
_SUFFIX = "/transitions"
_IF_MATCH_MAX = 200  # IfMatchHeader's max_length


class _WrittenHere:
    """The event sink of a lean transition: WRITE_STATUS_CHANGE writes the event, not a
    session."""

    def add(self, instance: object, /) -> None:
        pass


_WRITTEN_HERE = _WrittenHere()


def _transitions_route() -> APIRoute:
    """The route this path stands in for, under whose name requests are logged and counted."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is transition_program:
            return route
    raise LookupError("the transitions route is not in programs.router")


class LeanTransitions:
    """The middleware: innermost, so HEAD, gzip, CORS, the request log and metrics are as for
    any answer. `path_prefix` is where the programmes are, "/api/v1/programs/"."""

    def __init__(self, app: ASGIApp, *, path_prefix: str) -> None:
        self.app = app
        self.path_prefix = path_prefix
        self.route = _transitions_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = self._lean_request(scope) if scope["type"] == "http" else None
        if lean is None:
            await self.app(scope, receive, send)
            return
        try:
            messages = await _body_messages(receive)
        except HTTPException as refused:  # service.limits.BodySizeLimit's 413
            too_large = problem_response(
                refused.status_code, refused.detail, headers=refused.headers
            )
            await too_large(scope, receive, send)
            return
        answer: Response | None = None
        if messages[-1]["type"] == "http.request":
            # For the request log and metrics, whatever comes of it (routing sets them again).
            scope["route"], scope["path_params"] = self.route, {"code": lean.code}
            answer = await _answer(scope, lean, b"".join(m.get("body", b"") for m in messages))
        if answer is None:
            await self.app(scope, _replay(messages, receive), send)
        else:
            await answer(scope, receive, send)

    def _lean_request(self, scope: Scope) -> "LeanRequest | None":
        if scope["method"] != "POST" or scope["query_string"]:
            return None
        path = route_path(scope)
        if not (path.startswith(self.path_prefix) and path.endswith(_SUFFIX)):
            return None
        code = path[len(self.path_prefix) : -len(_SUFFIX)]
        if not _CODE.fullmatch(code):  # any other goes to the route
            return None
        state = scope["app"].state
        if state.engine.dialect.name != "postgresql":
            return None
        return _lean_headers(
            scope["headers"], code, if_match_required=state.settings.require_if_match
        )


@dataclass(frozen=True, slots=True)
class LeanRequest:
    code: str
    token: str
    if_match: str | None


def _lean_headers(
    headers: Sequence[tuple[bytes, bytes]], code: str, *, if_match_required: bool
) -> LeanRequest | None:
    authorization: bytes | None = None
    if_match: bytes | None = None
    content_type: bytes | None = None
    for name, value in headers:
        if name == b"idempotency-key":
            return None
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value
        elif name == b"if-match":
            if if_match is not None:
                return None
            if_match = value
        elif name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
    if authorization is None or content_type is None:
        return None
    media_type = content_type.partition(b";")[0].strip().lower()
    if media_type != b"application/json":
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if if_match is None:
        if if_match_required:
            return None
    elif len(if_match) > _IF_MATCH_MAX:
        return None
    return LeanRequest(code, token, None if if_match is None else if_match.decode("latin-1"))


async def _body_messages(receive: Receive) -> list[Message]:
    """The request's body as received, to the end or to a disconnect."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class _ToTheRoute(Exception):
    """Raised inside the transaction for what the route must answer: it rolls back, and the
    request goes to the route."""


async def _answer(scope: Scope, lean: LeanRequest, body: bytes) -> Response | None:
    try:
        transition = TransitionRequest.model_validate_json(body)
    except ValidationError:
        return None  # the route's 422, with its own wording
    parsed = parse_key(lean.token)
    if parsed is None:
        return None  # the route's 401
    try:
        return await _transition(scope, lean, parsed, transition)
    except _ToTheRoute:
        return None
    except Problem as problem:
        return render_problem(problem)
    except Exception as error:
        answer = database_trouble_response(Request(scope), error)
        if answer is None:
            raise  # a bug: a 500, as on the route
        return answer


async def _transition(
    scope: Scope, lean: LeanRequest, parsed: ParsedKey, transition: TransitionRequest
) -> Response:
    state = scope["app"].state
    dialect: Dialect = state.engine.dialect
    today = today_utc()
    async with driver_transaction(state.engine) as driver:
        # The key is looked up as the route's get_caller does (auth.service.authenticate), by
        # the statement that takes the write lock. A key that is not a live editor's, or whose
        # last use is due to be recorded, goes to the route (any lock goes with the rollback).
        key_row = await first_row_of(
            driver,
            dialect,
            KEY_AND_LOCK,
            {
                "key_id": parsed.key_id,
                "secret_hash": hash_secret(parsed.secret),
                "code": lean.code,
            },
        )
        key = key_holder(parsed, key_row)
        if (
            key is None
            or key_row is None
            or not role_allows(key.role, Role.EDITOR)
            or last_use_is_stale(key_row)
        ):
            raise _ToTheRoute()
        scope.setdefault("state", {})["caller_name"] = key.name  # for the request log
        actor = Actor(name=key.name, on_behalf_of=transition.actor)
        locked = await _read(driver, dialect, lean.code, today)
        check_if_match(locked.program, lean.if_match)
        status_before = locked.program.status
        event = apply_transition(
            _WRITTEN_HERE,
            locked,
            transition,
            actor,
            today=today,
            require_source=state.settings.require_sources,
        )
        program = locked.program
        params = {f"event_{name}": getattr(event, name) for name in _EVENT_COLUMNS}
        # JSONB as its text, which SQLAlchemy's codec on the connection passes on.
        params["event_sources"] = json.dumps(event.sources)
        params["event_changes"] = None if event.changes is None else json.dumps(event.changes)
        params |= {f"program_{name}": getattr(program, name) for name in STATUS_CHANGE_COLUMNS}
        params["program_id"] = program.id
        # One row: the programme's, locked and read above.
        event.id = (await first_row_of(driver, dialect, WRITE_STATUS_CHANGE, params))[0]
        row = locked
        if opened_or_closed(status_before, program.status):
            row = await _read(driver, dialect, lean.code, today)
    return committed_answer(201, *status_changed(row, event))


async def _read(driver: Any, dialect: Dialect, code: str, today: date) -> LockedProgram:
    record = await first_row_of(
        driver, dialect, PROGRAM_WITH_HEAD_BY_CODE, {"code": code, "day": today}
    )
    if record is None:
        raise NotFound(f"There is no programme with code {code!r}.")
    return _locked_from(record)


def _locked_from(record: Sequence[Any]) -> LockedProgram:
    """A row of PROGRAM_WITH_HEAD_BY_CODE as lock_program makes of it (JSONB arrives decoded,
    by SQLAlchemy's codec on the connection)."""
    count = len(_PROGRAM_KEYS)
    roadmap_code, *progress, head_hash = record[count:]  # a ValueError if the columns drift
    return LockedProgram(
        Program(**dict(zip(_PROGRAM_KEYS, record[:count], strict=True))),
        roadmap_code,
        progress_of(*progress),
        head_hash=head_hash,
    )
