"""The service's clock: UTC always. Every "now" and "today" comes from here, so that a test or
a replay can reason about one clock, and no domain owns it."""

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def today_utc() -> date:
    return utc_now().date()
