from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth import service
from service.auth.dependencies import AdminDep
from service.auth.roles import Role
from service.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyRead
from service.db import SessionDep
from service.errors import SecretShownOnce, problem_responses
from service.schemas import Text
from service.unit_of_work import UnitOfWorkDep

router = APIRouter(prefix="/keys", tags=["keys"], responses=problem_responses(401, 403))


@router.get("", response_model=ApiKeyList)
async def list_keys(_admin: AdminDep, session: SessionDep) -> ApiKeyList:
    """Every key with its role and when it was last used; never a secret."""
    keys = await service.list_keys(session)
    return ApiKeyList(items=[ApiKeyRead.model_validate(k) for k in keys])


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def create_key(
    data: ApiKeyCreate,
    _admin: AdminDep,
    uow: UnitOfWorkDep,
) -> Response:
    """The secret is in this answer only: it is not stored and cannot be shown again.

    The names the service records for its own changes (`seed`, `system`, `anonymous`, in any
    case, alone or followed by anything but a letter) are refused with 422: a key's changes
    must never pass for the service's own.

    With an Idempotency-Key the key is created once, but a retry does not get the secret again:
    replaying it would mean keeping it, in the clear, beside the keys that are kept only hashed.
    The retry gets a 409 `urn:roadmap:problem:secret-shown-once` naming the key instead; a
    client that lost the first answer revokes that key and creates another.
    """

    async def work(session: AsyncSession) -> tuple[ApiKeyCreated, dict[str, str]]:
        key, token = await service.create_key(session, name=data.name, role=Role(data.role))
        created = ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=token)
        return created, {"Cache-Control": "no-store"}  # no copy of the secret in any cache

    return await uow.answer(
        work,
        status_code=status.HTTP_201_CREATED,
        replay_instead=_secret_not_replayed,
    )


def _secret_not_replayed(created: ApiKeyCreated) -> SecretShownOnce:
    return SecretShownOnce(
        f"The key {created.name!r} was created by the first request with this Idempotency-Key; "
        "its secret was in that answer only and is not kept. If that answer was lost, revoke "
        "the key and create another.",
        name=created.name,
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
async def revoke_key(
    name: Annotated[Text, Path(max_length=100)], _admin: AdminDep, uow: UnitOfWorkDep
) -> Response:
    async def work(session: AsyncSession) -> tuple[None, dict[str, str]]:
        await service.revoke_key(session, name)
        return None, {}

    return await uow.answer(work, status_code=status.HTTP_204_NO_CONTENT)
