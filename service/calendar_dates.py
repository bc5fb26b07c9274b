"""Calendar days as dashboards and scripts send them. Pure: no web framework here.

Grafana puts its time range into URLs as epoch milliseconds (`${__from}`, `${__to}`), browsers
and pandas write ISO 8601 moments, people write dates. A day parameter takes all three and reads
each as the UTC calendar day it falls on: a moment with an offset is converted to UTC first,
then its date taken. Anything else is refused, with the forms named, rather than guessed at: a
number that is too short to be epoch milliseconds from after April 1970 is most likely epoch
seconds or a basic ISO date (20240129), and reading it as milliseconds would silently answer
for a day in 1970.
"""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

ACCEPTED_FORMS = (
    "a date (2024-01-29), an ISO 8601 date-time (2024-01-29T12:00:00Z, "
    "2024-01-29T12:00:00.000Z or with an offset such as +03:00; its UTC date is used) or epoch "
    "milliseconds (1706486400000, as Grafana's ${__from} and ${__to}; their UTC date is used)"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_PER_DAY = 86_400_000
# Years 1 to 9999 of the calendar, in UTC, as epoch milliseconds.
_FIRST_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_LAST_MS = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1) + (
    _MS_PER_DAY - 1
)
# 11 digits and up: from 1970-04-26T17:46:40Z on (and before 1969-09-07). Ten digits are epoch
# seconds in this century, eight a basic ISO date: both are refused rather than misread.
_EPOCH_MS_PATTERN = r"^-?[0-9]{11,15}$"
_EPOCH_MS = re.compile(r"-?[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 and the common ISO 8601 extended forms: seconds and fraction optional (nanoseconds
# from Go are cut to microseconds), offset Z or ±HH:MM, none read as UTC.
_MOMENT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]"
    r"(?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_LONGEST = len("9999-12-31T23:59:59.999999999+00:00")


def _refused(reason: str) -> PydanticCustomError:
    # The whole message goes in as context: the template itself must hold no braces.
    return PydanticCustomError(
        "calendar_day", "{message}", {"message": f"{reason}; give {ACCEPTED_FORMS}"}
    )


def _from_epoch_ms(text: str) -> date:
    digits = text.removeprefix("-")
    if len(digits) < 11:
        raise _refused(
            f"{text} is too short for epoch milliseconds (10 digits are epoch seconds, 8 a "
            "basic ISO date)"
        )
    ms = int(text) if len(digits) <= 15 else _LAST_MS + 1  # bounded before int() meets it
    if not _FIRST_MS <= ms <= _LAST_MS:
        raise _refused("epoch milliseconds outside years 1 to 9999")
    return (_EPOCH + timedelta(milliseconds=ms)).date()


def _from_moment(text: str) -> date:
    found = _MOMENT.fullmatch(text)
    if found is None:
        raise _refused("not a date, a date-time or epoch milliseconds")
    clock = found["time"]
    if "." in clock:  # datetime takes at most six digits of a second
        whole, fraction = clock.split(".")
        clock = f"{whole}.{fraction[:6].ljust(6, '0')}"
    offset = found["offset"] or "Z"
    try:
        moment = datetime.fromisoformat(f"{found['date']}T{clock}{offset.upper()}")
    except ValueError:
        raise _refused("not a valid date-time") from None
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _refused("the moment falls outside years 1 to 9999 in UTC") from None


def calendar_day(value: Any) -> date:
    """The UTC calendar day `value` names, in any of the ACCEPTED_FORMS."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _refused("not text")
    if len(value) > _LONGEST:
        raise _refused(f"longer than {_LONGEST} characters")
    if _EPOCH_MS.fullmatch(value):
        return _from_epoch_ms(value)
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _refused(f"{value} is not a day of the calendar") from None
    return _from_moment(value)


# In the OpenAPI document: the three forms side by side (a bare anyOf, so that an optional
# parameter's schema stays one flat anyOf with null).
CALENDAR_DAY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date", "description": "A date: 2024-01-29"},
        {
            "type": "string",
            "format": "date-time",
            "description": "An ISO 8601 date-time, 2024-01-29T12:00:00.000Z; its UTC date",
        },
        {
            "type": "string",
            "pattern": _EPOCH_MS_PATTERN,
            "description": "Epoch milliseconds, 1706486400000 (Grafana's ${__from}); its UTC date",
        },
    ]
}

CalendarDay = Annotated[date, BeforeValidator(calendar_day), WithJsonSchema(CALENDAR_DAY_SCHEMA)]
