"""Schema pieces shared by every domain."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from service.clock import format_timestamp

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"


# Characters no stored text may hold. PostgreSQL cannot store U+0000; a lone UTF-16 surrogate
# cannot be encoded as UTF-8 at all; the other C0 controls (all but tab, line feed and carriage
# return) are invisible and would make the record unreadable. Refused on both databases, so
# SQLite never keeps what an export into PostgreSQL could not.
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _printable(value: str) -> str:
    found = _FORBIDDEN_CHARACTERS.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain the character U+{ord(found.group()):04X} "
            "(NUL, other control characters and lone surrogates are refused)"
        )
    return value


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _http_url(value: str) -> str:
    """A real http(s) URL, by pydantic's URL parser (the WHATWG rules); kept as written, since
    it goes into the hash chain exactly as the editor gave it."""
    _printable(value)
    if not value.lower().startswith(("http://", "https://")) or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL without spaces")
    try:
        parsed = _HTTP_URL.validate_python(value)
    except ValidationError:
        raise ValueError("is not a valid URL") from None
    if not parsed.host:
        raise ValueError("is not a valid URL: it has no host")
    return value


Text = Annotated[str, AfterValidator(_printable)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
ShortText = Annotated[Text, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[Text, StringConstraints(max_length=10_000)]
Name = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
SourceUrl = Annotated[
    str,
    StringConstraints(max_length=2000),
    AfterValidator(_http_url),
    WithJsonSchema({"type": "string", "format": "uri", "maxLength": 2000}),
]
# A citation as the record keeps it: a URL, or text naming a source that has no stable address.
Citation = Annotated[Text, StringConstraints(min_length=1, max_length=2000)]
Citations = Annotated[
    list[Citation],
    Field(
        max_length=50,
        description="Every source of the change (URLs first); source_url defaults to the "
        "first URL among them.",
    ),
]

# Always "YYYY-MM-DDTHH:MM:SS.ffffffZ", the form the hash chain uses, so a client can check a
# chain from the JSON it reads without reformatting timestamps.
Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields, so no server-owned field can be smuggled in."""

    model_config = ConfigDict(extra="forbid")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
