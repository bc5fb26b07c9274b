"""Schema pieces shared by every domain."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, StringConstraints

from service.audit.chain import format_timestamp

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"

Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
SourceUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]

# Always "YYYY-MM-DDTHH:MM:SS.ffffffZ", the form the hash chain uses, so a client can check a
# chain from the JSON it reads without reformatting timestamps.
Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields, so no server-owned field can be smuggled in."""

    model_config = ConfigDict(extra="forbid")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
