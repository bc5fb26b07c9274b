"""Turning the plain URLs people write into the async drivers SQLAlchemy needs. Pure."""

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def parse_database_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {raw!r}") from exc
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database {url.drivername!r}; use sqlite:///PATH or postgresql://…"
        )
    return url.set(drivername=driver)


def normalise_database_url(raw: str) -> str:
    return parse_database_url(raw).render_as_string(hide_password=False)


def is_sqlite(raw: str) -> bool:
    return parse_database_url(raw).get_backend_name() == "sqlite"


def redacted(raw: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"
