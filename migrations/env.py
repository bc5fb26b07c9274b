"""Alembic environment. Runs on an async engine (asyncpg / aiosqlite), or on a connection the
caller hands over in ``config.attributes["connection"]`` (see service.schema_setup)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from service.config import get_settings
from service.db import create_engine
from service.models import Base

config = context.config
target_metadata = Base.metadata


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_own_engine() -> None:
    url = config.attributes.get("database_url") or get_settings().database_url
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run_migrations)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_migrations(connection)
    else:
        asyncio.run(_run_on_own_engine())


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run against a database.")
run_migrations_online()
