"""Opaque keyset cursors. Pure.

A cursor is the sort key of the last row a client has seen, as URL-safe base64 of a small JSON
array, so clients treat it as a token and the server can change its contents without breaking
anyone who only passes it back.
"""

import base64
import binascii
import json
from typing import Annotated

from fastapi import Query

from service.errors import InvalidInput

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
# Every sort key is a non-negative 64-bit integer (event ids, transaction ids), so a cursor
# holding anything else cannot be one the service issued, and must not reach the database.
MAX_KEY = 2**63 - 1
# Programme and milestone ids and events' seq are INTEGER columns: a larger key cannot be one
# the service issued either, and PostgreSQL's driver would refuse to send it.
MAX_INTEGER_KEY = 2**31 - 1

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
# The feed (GET /events) takes larger pages: a consumer catching up reads the whole history.
MAX_FEED_LIMIT = 1000
FeedLimitQuery = Annotated[int, Query(ge=1, le=MAX_FEED_LIMIT, description="Page size")]


def encode_cursor(*key: int) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, arity: int, max_key: int = MAX_KEY) -> tuple[int, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("The cursor is not one this service issued.") from None
    if (
        not isinstance(key, list)
        or len(key) != arity
        or not all(
            isinstance(part, int) and not isinstance(part, bool) and 0 <= part <= max_key
            for part in key
        )
    ):
        raise InvalidInput("The cursor is not one this service issued.")
    return tuple(key)
