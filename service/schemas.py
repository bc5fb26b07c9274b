"""Schema pieces shared by every domain."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer, StringConstraints

from service.audit.chain import format_timestamp

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"


def _without_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text: refuse it as bad input rather than fail on write.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


Text = Annotated[str, AfterValidator(_without_nul)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
ShortText = Annotated[Text, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[Text, StringConstraints(max_length=10_000)]
Name = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
SourceUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]

# Always "YYYY-MM-DDTHH:MM:SS.ffffffZ", the form the hash chain uses, so a client can check a
# chain from the JSON it reads without reformatting timestamps.
Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields, so no server-owned field can be smuggled in."""

    model_config = ConfigDict(extra="forbid")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
