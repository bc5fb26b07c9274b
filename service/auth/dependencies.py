"""Who is calling, and whether they may: FastAPI dependencies every route declares."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth.roles import Role, role_allows
from service.auth.service import authenticate
from service.db import single_statements
from service.errors import Forbidden, Unauthorized

# Declares the scheme in the OpenAPI document; the header is checked below, so that a
# malformed one is a 401 rather than silently anonymous.
_bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Bearer rmk_…`")


@dataclass(frozen=True)
class Caller:
    name: str | None = None  # None: anonymous
    role: Role | None = None


ANONYMOUS = Caller()


def _unauthorized(detail: str, error: str | None = None) -> Unauthorized:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return Unauthorized(detail, headers={"WWW-Authenticate": challenge})


async def get_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Caller:
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            "The Authorization header must be `Bearer <API key>`.", "invalid_request"
        )
    # Outside the request's own transaction (which on SQLite must not begin with an older
    # read, see lock_program), and without one for anonymous readers.
    key = await authenticate(single_statements(request), token.strip())
    if key is None:
        raise _unauthorized("The API key is unknown or revoked.", "invalid_token")
    request.state.caller_name = key.name  # for idempotency scopes and the request log
    return Caller(name=key.name, role=key.role)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(role: Role) -> Callable[[Caller], Awaitable[Caller]]:
    async def check(caller: CallerDep) -> Caller:
        if caller.role is None:
            raise _unauthorized(f"This needs an API key with the {role.value} role.")
        if not role_allows(caller.role, role):
            raise Forbidden(
                f"The key {caller.name!r} has the {caller.role.value} role; "
                f"this needs {role.value}."
            )
        return caller

    return check


async def require_reader(request: Request, caller: CallerDep) -> Caller:
    """Reads are public unless ROADMAP_REQUIRE_AUTH_FOR_READS is set."""
    if request.app.state.settings.require_auth_for_reads:
        return await require(Role.VIEWER)(caller)
    return caller


ReaderDep = Annotated[Caller, Depends(require_reader)]
EditorDep = Annotated[Caller, Depends(require(Role.EDITOR))]
AdminDep = Annotated[Caller, Depends(require(Role.ADMIN))]
