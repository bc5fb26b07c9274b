from typing import Annotated

from pydantic import StringConstraints

from service.auth.roles import Role
from service.schemas import ReadModel, RequestModel, Timestamp

KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")]


class ApiKeyCreate(RequestModel):
    name: KeyName
    role: Role


class ApiKeyRead(ReadModel):
    name: str
    role: Role
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class ApiKeyCreated(ApiKeyRead):
    secret: str


class ApiKeyList(ReadModel):
    items: list[ApiKeyRead]
