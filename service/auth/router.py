from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from service.auth import service
from service.auth.dependencies import AdminDep
from service.auth.roles import Role
from service.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyRead
from service.db import SessionDep
from service.errors import problem_responses
from service.schemas import Text

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
    responses=problem_responses(409),
)
async def create_key(data: ApiKeyCreate, _admin: AdminDep, session: SessionDep) -> ApiKeyCreated:
    """The secret is in this answer only: it is not stored and cannot be shown again.

    The names the service records for its own changes (`seed`, `system`, `anonymous`, in any
    case, alone or followed by anything but a letter) are refused with 422: a key's changes
    must never pass for the service's own.
    """
    key, token = await service.create_key(session, name=data.name, role=Role(data.role))
    await session.commit()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=token)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
async def revoke_key(
    name: Annotated[Text, Path(max_length=100)], _admin: AdminDep, session: SessionDep
) -> Response:
    await service.revoke_key(session, name)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
