"""The ORM base, the engine and the session dependency."""

import contextlib
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from sqlalchemy import Dialect, Executable, MetaData, Row, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import await_only, greenlet_spawn

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


class CachedReads(StrEnum):
    """How a table's changes reach the data fingerprint that validates every cached read
    (service.caching). Every table says which, in its `info` (see cached_reads), and a test
    holds every table to it: a new table cannot feed a cached view unnoticed."""

    VERSIONED = "versioned"  # changed in place, each change bumps `version`: sum and count
    APPENDED = "appended"  # rows are only ever added: count
    COVERED = "covered"  # each change also bumps a VERSIONED table (its comment says which)
    NOT_READ = "not-read"  # no cached read shows it


def cached_reads(kind: CachedReads) -> dict[str, Any]:
    """The last item of a model's __table_args__."""
    return {"info": {"cached_reads": kind}}


# How long a SQLite writer waits for the file's write lock when no lock timeout is given (the
# CLI's engines): `migrate` and `import` rather wait than fail beside a running service.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; the busy timeout makes writers queue
        # instead of failing when several processes share the file.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's lower() folds ASCII letters only, PostgreSQL's every script; a search (ILIKE,
        # which is lower() LIKE lower() on SQLite) must find «Газ» from «газ» on both.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _discard_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection the server has closed (a restart, a failover, an administrator's
    pg_terminate_backend) is replaced at checkout instead of failing the request that draws it.

    asyncpg notices the server closing the socket while the connection idles in the pool, so
    this costs no round trip, unlike pool_pre_ping's one per checkout. A connection that dies
    during a request is SQLAlchemy's to handle: it invalidates that connection and every
    connection pooled before it (the error becomes a 503, see errors.database_trouble).
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            # The pool discards the connection and draws another (up to three attempts).
            raise DisconnectionError("the server closed this pooled connection")


def _postgresql_session_settings(
    lock_timeout_ms: int | None, statement_timeout_ms: int | None
) -> dict[str, dict[str, str]]:
    """asyncpg sends these as the session's settings when it connects: no extra round trip.

    JIT is off: every statement of the service is short, and PostgreSQL decides to compile by
    cost estimates, which the subqueries of audit.rendered inflate: it spent half a second
    compiling a page of the feed that it then read in ten milliseconds. Strings are standard
    (backslashes are plain characters), as audit.rendered's literals take them to be, and
    dates are written YYYY-MM-DD, as audit.rendered's CSV takes them to be."""
    settings: dict[str, str] = {
        "jit": "off",
        "standard_conforming_strings": "on",
        "DateStyle": "ISO",
    }
    if lock_timeout_ms is not None:
        settings["lock_timeout"] = str(lock_timeout_ms)
    if statement_timeout_ms is not None:
        settings["statement_timeout"] = str(statement_timeout_ms)
    return {"server_settings": settings}


POOL_TIMEOUT_S = 10


def create_engine(
    database_url: str,
    *,
    pool_size: int = 16,
    lock_timeout_ms: int | None = None,
    statement_timeout_ms: int | None = None,
) -> AsyncEngine:
    """The engine for `database_url`. The timeouts (milliseconds) are the serving process's
    (Settings.db_lock_timeout_ms, db_statement_timeout_ms); None keeps the database's own
    default, no limit on PostgreSQL, which is what the CLI's migrations and imports need.
    On SQLite the lock timeout is the busy timeout and there is no statement timeout."""
    url = normalise_database_url(database_url)
    if is_sqlite(database_url):
        engine = create_async_engine(url)
        _configure_sqlite(
            engine, SQLITE_BUSY_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
        )
        return engine
    # No overflow: connections beyond the pool would be opened for a burst and closed again
    # when returned, i.e. a new connection per request under sustained load. A request rather
    # waits its turn (at most POOL_TIMEOUT_S, then 503), which is short because no request
    # holds a connection while its answer goes out: writes commit first, reads use
    # open_session, streams read page by page. An operator can count on workers × pool_size.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
        pool_pre_ping=False,  # see _discard_closed_connections
        connect_args=_postgresql_session_settings(lock_timeout_ms, statement_timeout_ms),
    )
    _discard_closed_connections(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def open_session(request: Request) -> AsyncSession:
    """A session for work a route may not need to do: a read answered from the cache (see
    service.caching) needs none, and creating one for every request costs."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker()


async def read_snapshot(session: AsyncSession) -> AsyncConnection:
    """The session's connection, on which every query from here on sees the same committed
    state: a write committed meanwhile cannot leave, say, a programme's version ahead of the
    events read for it. Call it before the session's first query."""
    if session.get_bind().dialect.name == "postgresql":
        return await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    connection = await session.connection()
    # pysqlite opens no transaction for reads, so each SELECT would see the latest commit; an
    # explicit BEGIN makes SQLite (in WAL mode) keep the snapshot of the first read to the end.
    await connection.exec_driver_sql("BEGIN")
    return connection


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


class ConnectionLost(Exception):
    """The connection died during the statement: another connection may well serve. Its
    SQLSTATE is PostgreSQL's connection_failure, so errors.database_trouble takes it for the
    database being unavailable (a 503) where nothing else serves instead."""

    sqlstate = "08006"


async def first_row_on_driver(
    engine: AsyncEngine, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Any] | None:
    """fetch_first for the hot path of cached answers (cached_answers): on PostgreSQL the
    statement, compiled once, runs on asyncpg itself, on a connection of the engine's pool,
    which costs a third of SQLAlchemy's execution path. The parameters must be values asyncpg
    takes as they are (str, int). Errors are the driver's own, untranslated
    (errors.database_trouble tells them apart), but for ConnectionLost. SQLite: fetch_first."""
    if engine.dialect.name != "postgresql":
        return await fetch_first(engine, statement, params)
    # Shielded, as page_session's reads are: a connection cut mid-statement must not go back.
    # One greenlet for the checkout, the statement and the return, as SQLAlchemy runs its own
    # I/O: a switch into and out of a greenlet costs as much as the statement's own work.
    with anyio.CancelScope(shield=True):
        row = await greenlet_spawn(_first_row_in_greenlet, engine, statement, params)
    return row


def _first_row_in_greenlet(
    engine: AsyncEngine, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Any] | None:
    connection = engine.sync_engine.pool.connect()
    driver = connection.driver_connection
    assert driver is not None  # a connection checked out of the pool is open
    try:
        row: Sequence[Any] | None = await_only(
            first_row_of(driver, engine.dialect, statement, params)
        )
    except Exception as error:
        # A timeout or a refusal leaves the connection as good as before; only a dead one is
        # thrown away.
        if driver.is_closed():
            connection.invalidate()
            raise ConnectionLost() from error
        raise
    finally:
        connection.close()
    return row


async def first_row_of(
    driver: Any, dialect: Dialect, statement: Executable, params: Mapping[str, Any]
) -> Any:
    """The first row of `statement`, compiled once for `dialect`, run on `driver`, an asyncpg
    connection (first_row_on_driver's or driver_transaction's): an asyncpg Record, read by
    position or by column name, or None. The parameters must be values asyncpg takes as they
    are: str, int, date, an aware datetime, and JSON as its text."""
    sql, names, literals = compiled_for_driver(statement, dialect)
    arguments = [params[name] if name in params else literals[name] for name in names]
    return await driver.fetchrow(sql, *arguments)


@contextlib.asynccontextmanager
async def driver_transaction(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A transaction on asyncpg itself (PostgreSQL only), on a connection of the engine's pool:
    the lean write path's (programs.lean_transitions), which costs a fraction of a session's.
    Committed when the block ends, rolled back when it raises; errors are the driver's own,
    untranslated (errors.database_trouble tells them apart), but for ConnectionLost when the
    connection died, whether or not the COMMIT reached the server.

    Shielded, like page_session: a write cut mid-statement must neither go back to the pool
    with its transaction open nor leave the client without the answer to what it committed. A
    connection that died is thrown away; a timeout or a refusal leaves it as good as before."""
    with anyio.CancelScope(shield=True):
        connection = await greenlet_spawn(engine.sync_engine.pool.connect)
        driver = connection.driver_connection
        assert driver is not None  # a connection checked out of the pool is open
        try:
            async with driver.transaction():
                yield driver
        except Exception as error:
            if driver.is_closed():
                # asyncpg then raises "the connection is closed" from the rollback, in place
                # of what killed it: neither says more than this.
                await greenlet_spawn(connection.invalidate)
                raise ConnectionLost() from error
            raise
        finally:
            await greenlet_spawn(connection.close)


@functools.lru_cache(maxsize=32)
def compiled_for_driver(
    statement: Executable, dialect: Dialect
) -> tuple[str, tuple[str, ...], Mapping[str, Any]]:
    """The statement's SQL, its parameters' names in order, and the values of those the
    statement holds itself (literals such as coalesce's 0)."""
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.post_compile_params or compiled.literal_execute_params:
        # Rendered only at execution (an expanding IN, say), which the driver cannot do.
        raise ValueError("a statement with parameters rendered at execution")
    literals = {
        name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
    }
    return compiled.string, tuple(compiled.positiontup or ()), literals


@contextlib.asynccontextmanager
async def page_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A short session for one read of a streamed answer (an export's page, a live stream's
    poll), run to its end even if the stream is cancelled meanwhile.

    A stream is cancelled when its client goes away (so is every HEAD, which edges.HeadAsGet
    answers by hanging up after the headers) or when the server stops, most likely during one
    of these reads. Cut mid-statement, SQLAlchemy takes the connection for broken and throws it
    away, and on SQLite the close of an aiosqlite connection thrown away under cancellation is
    left pending for ever ("Task was destroyed but it is pending!" in the log, a driver thread
    lost each time). Shielded, the read ends (milliseconds, bounded by the lock and statement
    timeouts), the connection goes back to the pool, and the cancellation lands at the
    stream's next step, outside any session.
    """
    with anyio.CancelScope(shield=True):
        async with sessions() as session:
            yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
