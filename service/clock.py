"""The service's clock: UTC always. Every "now" and "today" comes from here, so that a test or
a replay can reason about one clock, and no domain owns it."""

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def today_utc() -> date:
    return utc_now().date()


def format_timestamp(moment: datetime) -> str:
    """The one text form of a moment, in answers and in the hash chain (service.audit.chain):
    UTC with microseconds and a Z; a naive value (SQLite hands those back) is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
