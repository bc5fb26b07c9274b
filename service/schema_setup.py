"""Bringing a database to the current schema and seeding it, safely from many processes at once.

Replicas that start together against one PostgreSQL take a session-level advisory lock, so one
migrates and seeds while the others wait and then find nothing left to do. On SQLite a lock
file beside the database does the same for processes sharing the file.
"""

import contextlib
import fcntl
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from service.db_url import parse_database_url
from service.seed.loader import (
    SeedReport,
    bundled_seed_files,
    database_is_empty,
    load_missing_parts_of_bundled_roadmaps,
    load_seed_files,
)

# Any constant works; this one spells "roadmap" in ASCII, so it is recognisable in pg_locks.
ADVISORY_LOCK_KEY = 0x726F61646D6170


def alembic_config(database_url: str | None = None) -> Config:
    """The migrations ship inside the package (service/migrations in the wheel, migrations/ in
    a checkout), so `roadmap migrate` works from any directory."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("service.migrations")))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.asynccontextmanager
async def startup_lock(engine: AsyncEngine, database_url: str) -> AsyncIterator[None]:
    url = parse_database_url(database_url)
    if url.get_backend_name() == "postgresql":
        async with engine.connect() as connection:
            await connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            await connection.commit()
            try:
                yield
            finally:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                await connection.commit()
    elif url.database and url.database != ":memory:":
        with _file_lock(Path(url.database).with_suffix(".migrate-lock")):
            yield
    else:
        yield


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_to_head(connection: AsyncConnection) -> None:
    await connection.run_sync(_upgrade)


async def prepare_database(
    engine: AsyncEngine, database_url: str, *, migrate: bool = True, seed: bool = True
) -> SeedReport | None:
    """Migrate (optionally) and seed an empty database, under the start-up lock."""
    async with startup_lock(engine, database_url):
        if migrate:
            async with engine.begin() as connection:
                await upgrade_to_head(connection)
        if not seed:
            return None
        async with AsyncSession(engine, expire_on_commit=False) as session:
            if await database_is_empty(session):
                report = await load_seed_files(session, bundled_seed_files())
            else:
                report = await load_missing_parts_of_bundled_roadmaps(session)
            await session.commit()
            return report
