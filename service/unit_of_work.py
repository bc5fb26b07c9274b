"""The unit of work: every write goes through it. The route's work runs in the request's
session without committing; then the unit of work commits once and answers, only after the
commit (no 2xx without a record), and with an Idempotency-Key exactly once: a retry gets the
stored answer, refusals included."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import SessionDep
from service.errors import Problem, render_problem
from service.idempotency import service
from service.idempotency.service import StoredResponse

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe key: the same key with the same request replays the first answer.",
    ),
]

Body = TypeVar("Body", bound=BaseModel | None)

# The work of a write: runs in the session it is given without committing, and returns the body
# (None: no content) and the headers of the answer.
Work = Callable[[AsyncSession], Awaitable[tuple[Body, dict[str, str]]]]

REPLAYED_HEADER = "Idempotent-Replayed"


def _as_response(stored: StoredResponse, *, replayed: bool = False) -> Response:
    headers = dict(stored.headers)
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        headers=headers,
        media_type=headers.pop("content-type", "application/json" if stored.body else None),
    )


def caller_scope(request: Request) -> str:
    """Idempotency keys are scoped to the caller, so two clients' keys never collide."""
    caller: str = getattr(request.state, "caller_name", None) or "anonymous"
    return caller


def _stored_problem(problem: Problem) -> StoredResponse:
    rendered = render_problem(problem)
    return StoredResponse(
        rendered.status_code,
        bytes(rendered.body),
        {k: v for k, v in rendered.headers.items() if k.lower() != "content-length"},
    )


def _stored_answer(
    status_code: int, body: BaseModel | None, headers: dict[str, str]
) -> StoredResponse:
    content = b"" if body is None else body.model_dump_json().encode()
    return StoredResponse(status_code, content, headers)


def committed_answer(status_code: int, body: BaseModel | None, headers: dict[str, str]) -> Response:
    """The answer to a write that committed, as every write path gives it (the unit of work's,
    and programs.lean_transitions')."""
    return _as_response(_stored_answer(status_code, body, headers))


@dataclass(frozen=True)
class UnitOfWork:
    """One write: the request, its session and its Idempotency-Key (if any)."""

    request: Request
    session: AsyncSession
    idempotency_key: str | None

    async def answer(
        self,
        work: Work[Body],
        *,
        status_code: int,
        replay_instead: Callable[[Body], Problem] | None = None,
        dry_run: bool = False,
    ) -> Response:
        """Run `work`, commit, and answer — only after the commit.

        `replay_instead` is for an answer that must not be stored, such as a secret shown once:
        the refusal it makes of the answer is stored, and a retry gets that instead.

        `dry_run`: run `work` all the same, under the same locks and checks, then roll it back
        and answer 200 with its body; nothing is stored, not even under the Idempotency-Key.
        """
        session = self.session
        if dry_run:
            try:
                body, _headers = await work(session)
            finally:
                await session.rollback()
            return _as_response(_stored_answer(200, body, {}))
        if self.idempotency_key is None:
            body, headers = await work(session)
            await session.commit()
            return committed_answer(status_code, body, headers)

        request = self.request
        sessionmaker = request.app.state.sessionmaker
        claimed = await service.claim(
            sessionmaker,
            scope=caller_scope(request),
            key=self.idempotency_key,
            fingerprint=service.request_fingerprint(
                request.method, request.url.path, await request.body()
            ),
        )
        if isinstance(claimed, StoredResponse):
            return _as_response(claimed, replayed=True)
        try:
            body, headers = await work(session)
            answer = _stored_answer(status_code, body, headers)
            stored = answer if replay_instead is None else _stored_problem(replay_instead(body))
            await service.complete(session, claimed, stored)
            await session.commit()
            return _as_response(answer)
        except Problem as problem:
            # A refused request is an answer too: a retry gets the same refusal.
            await session.rollback()
            stored = _stored_problem(problem)
            await service.complete(session, claimed, stored)
            await session.commit()
            return _as_response(stored)
        except BaseException:
            await session.rollback()
            await service.release(sessionmaker, claimed)
            raise


async def unit_of_work(
    request: Request, session: SessionDep, idempotency_key: IdempotencyKeyHeader = None
) -> UnitOfWork:
    return UnitOfWork(request, session, idempotency_key)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work)]
