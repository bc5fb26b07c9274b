"""The ORM base, the engine and the session dependency."""

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Executable, MetaData, Row, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from service.db_url import is_sqlite, normalise_database_url

# Named constraints, so migrations can refer to them the same way on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; the busy timeout makes writers queue
        # instead of failing when several processes share the file.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


POOL_TIMEOUT_S = 10


def create_engine(database_url: str, *, pool_size: int = 16) -> AsyncEngine:
    url = normalise_database_url(database_url)
    if is_sqlite(database_url):
        engine = create_async_engine(url)
        _configure_sqlite(engine)
        return engine
    # No overflow: connections beyond the pool would be opened for a burst and closed again
    # when returned, i.e. a new connection per request under sustained load. A request rather
    # waits its turn (at most POOL_TIMEOUT_S, then 503), which is short because no request
    # holds a connection while its answer goes out: writes commit first, reads use
    # open_session, streams read page by page. An operator can count on workers × pool_size.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
        pool_pre_ping=False,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def open_session(request: Request) -> AsyncSession:
    """A session for work a route may not need to do: a read answered from the cache (see
    service.caching) needs none, and creating one for every request costs."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker()


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit mode, for reads that are one statement: a statement is its
    own snapshot, so the BEGIN and ROLLBACK round trips around it would buy nothing."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def single_statements(request: Request) -> AsyncEngine:
    """The app's engine for reads of one statement (see autocommit_engine)."""
    engine: AsyncEngine = request.app.state.autocommit_engine
    return engine


async def fetch_first(
    engine: AsyncEngine, statement: Executable, params: Mapping[str, Any] | None = None
) -> Row[Any] | None:
    """The first row of one statement, run on its own in autocommit (see autocommit_engine)."""
    async with engine.connect() as connection:
        return (await connection.execute(statement, params)).first()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
