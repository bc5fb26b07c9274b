"""Hostile input for tests/robustness/test_fuzz.py, and how to put it on the wire the way a
careless or malicious client would: raw JSON with \\ud800 escapes, percent-encoded path segments
and query values, raw header bytes.

Each family starts with named values (the cases a bug report would cite, tried first and often)
and mixes in generated ones.
"""

import base64
import binascii
import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

# --- text ---------------------------------------------------------------------------------------

# Lone UTF-16 surrogates can reach a server only as JSON escapes or percent-encoded bytes: UTF-8
# cannot encode them, so no database can store them.
LONE_SURROGATES = ("\ud800", "a\udfffb", "\udc00\ud800", "\ud83d")
CONTROL_CHARACTERS = ("\x00", "a\x00b", "\x01", "\x07\x08", "\x1b[2J", "\x7f", "\x85", "\u2028")
ODD_UNICODE = ("\ufeff", "\u202etxt.exe", "e\u0301", "\U0001f600", "\ufffd", "İ", "ﬀ", " ")
LONG_TEXT = ("x" * 100_000, "é" * 10_001, "\U0001f600" * 2_001, "a" * 501)
NAMED_TEXT = LONE_SURROGATES + CONTROL_CHARACTERS + ODD_UNICODE + LONG_TEXT + ("", "null")

NOT_URLS = (
    "http://[",
    "javascript:alert(1)",
    "http://exa mple.com",
    "http://example.com/\x00",
    "http://",
    "https://:80/",
    "ftp://example.com/",
    "//example.com/",
    "http://example.com:99999/",
    "http://\ud800.example/",
    "http://exam\nple.com/",
    "data:text/html,<script>alert(1)</script>",
)

# st.characters() never gives surrogates and seldom controls: ask for them as well.
_any_character = st.characters() | st.characters(categories=["Cc", "Cs"])

hostile_text = st.one_of(
    st.sampled_from(NAMED_TEXT),
    st.text(_any_character, max_size=30),
    st.builds(str.__mul__, st.sampled_from(["x", "é", "\ud800", "\x00"]), st.integers(1, 20_000)),
)

# Short enough to go in a URL, which clients limit (httpx to 64 KiB, percent-encoded).
url_text = hostile_text.map(lambda text: text[:5_000])

hostile_urls = st.one_of(
    st.sampled_from(NOT_URLS),
    hostile_text.map(lambda tail: "https://example.org/" + tail),
    hostile_text,
)


def as_received(text: str) -> str:
    """The text a server reads from JSON escapes: a high surrogate followed by a low one is one
    character (U+1F600 is sent as \\ud83d\\ude00); any other surrogate stays alone."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def unstorable(value: object) -> bool:
    """Text that no database can hold as written: a NUL (PostgreSQL refuses it) or a lone
    surrogate (UTF-8 cannot encode it)."""
    return isinstance(value, str) and any(
        c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in as_received(value)
    )


# --- dates, moments, numbers --------------------------------------------------------------------

EXTREME_DATES = (
    "0001-01-01",
    "9999-12-31",
    "0000-12-31",
    "10000-01-01",
    "-2024-01-01",
    "2024-02-30",
    "2024-1-1",
    "20240101",
    "1e308",
)
EXTREME_MOMENTS = (
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "2024-01-01T00:00:00",
    "2024-01-01T24:00:00Z",
    "2024-06-01T12:00:00+99:00",
    "99999999999999999999",
)


class RawJson(str):
    """A value written into a JSON body as it stands: a number of 5,000 digits, which Python's
    json module refuses to write (and, by default, to read)."""


BIG_INTEGERS = (2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**100)
NUMBERS = (
    *(str(n) for n in BIG_INTEGERS),
    "0",
    "-1",
    "1e308",
    "NaN",
    "inf",
    "1.5",
    "0x10",
    " 1",
    "١",  # ARABIC-INDIC DIGIT ONE, which int() accepts
    "1" * 5_000,  # more digits than Python converts by default
)

_offsets = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))

hostile_dates = st.one_of(
    st.sampled_from(EXTREME_DATES),
    st.dates().map(date.isoformat),
    url_text,
)
hostile_moments = st.one_of(
    st.sampled_from(EXTREME_MOMENTS),
    st.datetimes(timezones=_offsets).map(datetime.isoformat),
    url_text,
)
hostile_numbers = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers().map(str),
    st.floats().map(str),
    url_text,
)
# Values for a JSON number field: what json.dumps writes for them (1e+308, NaN, 10**100 ...).
hostile_json_numbers: SearchStrategy[Any] = st.one_of(
    st.sampled_from([*BIG_INTEGERS, 1e308, float("nan"), float("inf"), -0.0, 1.5, True]),
    st.just(RawJson("1" * 5_000)),
    st.integers(),
    st.sampled_from(["1", "", None, [], {}]),
)
hostile_json_booleans: SearchStrategy[Any] = st.sampled_from(
    [None, "true", "yes", 1, 0, 2.5, [], {}, "\x00"]
)


# --- cursors ------------------------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_of(value: Any) -> str:
    """A cursor shaped like the service's: URL-safe base64 of JSON, here of any JSON value."""
    return b64(json.dumps(value).encode())


NAMED_CURSORS = (
    cursor_of([2**63]),
    cursor_of([-(2**63) - 1]),
    cursor_of([2**63, 1]),
    cursor_of([1, 2**63]),
    cursor_of([1e308]),
    cursor_of([10**100, 10**100]),
    cursor_of([[1]]),
    cursor_of([[1], [2]]),
    cursor_of(["1"]),
    cursor_of(["1", "2"]),
    cursor_of([True]),
    cursor_of({"id": 1}),
    b64(b"[NaN]"),
    b64(b"[Infinity, 1]"),
    b64(b"[1"),
    b64(b"\xff\xfe"),
    "!!!",
    "%",
    "=",
    "WzFd====",
)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)

cursors = st.one_of(
    st.sampled_from(NAMED_CURSORS),
    _json_values.map(cursor_of),
    st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=3).map(cursor_of),
    st.binary(max_size=60).map(b64),
    url_text,
)


def could_be_issued(cursor: str) -> bool:
    """Whether `cursor` holds what a keyset cursor can: a list of 64-bit integers. Anything
    else cannot have come from the service and must be refused before it reaches a query."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    issued: bool = isinstance(key, list) and all(
        type(part) is int and -(2**63) <= part < 2**63 for part in key
    )
    return issued


# --- on the wire --------------------------------------------------------------------------------


def json_bytes(body: dict[str, Any]) -> bytes:
    """The body as a client that escapes everything sends it: a lone surrogate as a \\ud800
    escape, which is valid JSON although no UTF-8 text can hold it."""
    raw = {f"@raw{n}@": v for n, v in enumerate(body.values()) if isinstance(v, RawJson)}
    text = json.dumps(
        {k: f"@raw{n}@" if isinstance(v, RawJson) else v for n, (k, v) in enumerate(body.items())},
        ensure_ascii=True,
    )
    for placeholder, value in raw.items():
        text = text.replace(json.dumps(placeholder), value)
    return text.encode("ascii")


def percent_encoded(text: str) -> str:
    """For a path segment or a query value: every byte escaped, a lone surrogate as the bytes
    UTF-8 would give it (%ED%A0%80), which no valid UTF-8 text contains."""
    return quote(text, safe="", errors="surrogatepass")


def query_string(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{percent_encoded(name)}={percent_encoded(value)}" for name, value in params)


# Header values a real server passes on: no CR, LF or NUL (the HTTP parsers refuse those), but
# any other byte, as a client that sends UTF-8 (or anything) would.
NAMED_HEADER_VALUES = (
    b"x" * 100_000,
    b"\xff\xfe",
    b"\xed\xa0\x80",  # a lone surrogate, as UTF-8 would write it if it could
    b'"1", W/"2"',
    b"*",
    b"",
    b"text/plain",
    b"multipart/form-data; boundary=x",
    b"application/json; charset=utf-16",
)
header_values = st.one_of(
    st.sampled_from(NAMED_HEADER_VALUES),
    st.text(st.characters(exclude_characters="\r\n\x00"), max_size=300).map(
        lambda text: text.encode("utf-8", "surrogatepass")
    ),
)


# --- which values for which field or parameter, and which must be refused -----------------------

extreme_days = st.one_of(
    st.sampled_from([date.min, date.max, date(1, 1, 2), date(9999, 12, 30), date(1970, 1, 1)]),
    st.dates(),
)

# Query parameter names: printable, no surrogates (a server decodes %ED%A0%80 to U+FFFD, so
# the name it could report would not be the one sent).
parameter_names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True),
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20),
)

# Text a client can put in a header of a real request: printable ASCII, no space at either end.
safe_header_text = st.from_regex(r"[!-~]([ -~]{0,40}[!-~])?", fullmatch=True)


def sendable_as_header(text: str) -> bool:
    return re.fullmatch(r"[!-~]([ -~]*[!-~])?", text) is not None


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null forms a (resolved) schema allows."""
    options = schema.get("anyOf", [schema])
    return [option for option in options if option.get("type") != "null"]


def _kinds(schema: dict[str, Any]) -> set[str]:
    return {str(o.get("format") or o.get("type")) for o in _alternatives(schema)}


def field_values(name: str, schema: dict[str, Any]) -> SearchStrategy[Any]:
    """Hostile values for a JSON body field, by what the field holds."""
    kinds = _kinds(schema)
    if name == "source_url":
        return hostile_urls
    if "date" in kinds:
        return hostile_dates
    if kinds & {"integer", "number"}:
        return hostile_json_numbers
    if "boolean" in kinds:
        return hostile_json_booleans
    return hostile_text


def query_values(schema: dict[str, Any]) -> SearchStrategy[str]:
    """Hostile values for a query parameter (other than a cursor), by what it holds."""
    kinds = _kinds(schema)
    if "date" in kinds:
        return hostile_dates
    if "date-time" in kinds:
        return hostile_moments
    if "integer" in kinds:
        return hostile_numbers
    return url_text


def _out_of_bounds(value: float, schema: dict[str, Any]) -> bool:
    low: float = schema.get("minimum", -math.inf)
    high: float = schema.get("maximum", math.inf)
    return not low <= value <= high


def _too_long(value: str, schema: dict[str, Any]) -> bool:
    most: float = schema.get("maxLength", math.inf)
    return len(value) > most


def must_refuse_field(name: str, schema: dict[str, Any], value: Any) -> bool:
    """Values a write must refuse whatever the rest of the body: text no database can store,
    text over the field's length, a source that is no URL, a number outside its bounds."""
    if unstorable(value) or (name == "source_url" and value in NOT_URLS):
        return True
    for form in _alternatives(schema):
        text = as_received(value) if isinstance(value, str) else None
        if text is not None and form.get("type") == "string" and _too_long(text, form):
            return True
        if type(value) is int and form.get("type") == "integer" and _out_of_bounds(value, form):
            return True
    return False


def _decimal(text: str) -> int | None:
    """The integer an ASCII decimal stands for (capped: a 5,000-digit one is simply huge)."""
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return None
    magnitude = int(digits) if len(digits) <= 30 else 10**30
    return -magnitude if text.startswith("-") else magnitude


def must_refuse_parameter(schema: dict[str, Any], value: str) -> bool:
    """Query or header values that must be refused: NUL, text over the parameter's length, a
    number outside its bounds."""
    if "\x00" in value:
        return True
    for form in _alternatives(schema):
        if form.get("type") == "string" and _too_long(value, form):
            return True
        number = _decimal(value) if form.get("type") == "integer" else None
        if number is not None and _out_of_bounds(number, form):
            return True
    return False
