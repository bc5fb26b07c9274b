"""The migrations are the schema: they agree with the models, reverse cleanly, and make the
event table append-only in the database itself."""

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from service.db import create_engine
from service.schema_setup import alembic_config, current_revision, head_revision
from tests.support.builders import SEEDED_EVENTS


def _check(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.check(config)  # raises if autogenerate would find any difference


def _down_and_up(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")
    assert current_revision(connection) is None
    command.upgrade(config, "head")


async def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        await connection.run_sync(_check)
    await engine.dispose()


async def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_down_and_up)
    async with engine.connect() as connection:
        assert await connection.run_sync(current_revision) == head_revision()
        tables = await connection.execute(text("SELECT count(*) FROM events"))
        assert tables.scalar() == 0
    await engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET note = 'rewritten' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 7",
        "DELETE FROM events",
        "UPDATE decisions SET title = 'rewritten'",
        "DELETE FROM decisions",
        "DELETE FROM decision_attributions",
    ],
)
async def test_database_refuses_to_change_events(database_url: str, statement: str) -> None:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(text(statement))
        await connection.rollback()
        count = (await connection.execute(text("SELECT count(*) FROM events"))).scalar()
    await engine.dispose()
    assert count == SEEDED_EVENTS


async def test_database_refuses_truncate(database_url: str) -> None:
    engine = create_engine(database_url)
    if engine.dialect.name != "postgresql":
        await engine.dispose()
        pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE is covered above")
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(text("TRUNCATE events CASCADE"))
    await engine.dispose()
