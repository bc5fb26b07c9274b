"""The migrations are the schema: they agree with the models, reverse cleanly, and make the
event table append-only in the database itself."""

import re
from collections.abc import Callable

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.clock import today_utc
from service.db import create_engine
from service.decisions.schemas import DecisionCreate, DecisionTransition
from service.decisions.service import record_decision
from service.programs.lean_transitions import STATUS_CHANGE_COLUMNS
from service.programs.schemas import ProgramCreate
from service.programs.service import Actor, create_program
from service.rules.workflow import Status
from service.schema_setup import (
    alembic_config,
    current_revision,
    head_revision,
    prepare_database,
)
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


def _indexed_columns(connection: Connection, table: str) -> set[str]:
    inspector = inspect(connection)
    primary_key = inspector.get_pk_constraint(table)["constrained_columns"]
    indexes = [index["column_names"] for index in inspector.get_indexes(table)]
    uniques = [unique["column_names"] for unique in inspector.get_unique_constraints(table)]
    return {*primary_key, *(column for names in indexes + uniques for column in names if column)}


async def test_a_status_change_writes_no_indexed_column(database_url: str) -> None:
    """Every transition rewrites its programme's row; with none of the columns it writes
    indexed, PostgreSQL does that in place (a HOT update) instead of adding an entry to each of
    the programmes' indexes (migration 0012)."""
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        indexed = await connection.run_sync(_indexed_columns, "programs")
        definitions = []
        if engine.dialect.name == "postgresql":  # expressions and predicates count too
            query = text("SELECT indexdef FROM pg_indexes WHERE tablename = 'programs'")
            definitions = list((await connection.execute(query)).scalars())
    await engine.dispose()
    assert {"id", "roadmap_id", "sector"} <= indexed  # the inspection sees the indexes
    assert indexed.isdisjoint(STATUS_CHANGE_COLUMNS)
    written = re.compile(rf"\b({'|'.join(STATUS_CHANGE_COLUMNS)})\b")
    assert not [definition for definition in definitions if written.search(definition)]


def _to(revision: str) -> Callable[[Connection], None]:
    def migrate(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    return migrate


async def _count(engine: AsyncEngine, query: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(query))).scalar_one())


async def test_below_decisions_and_back_the_seeded_acts_return(database_url: str) -> None:
    """Below 0007 the seeded decisions go with their tables, and the events keep their
    triggers; upgrading again and starting attributes the acts again."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_to("0006"))
    assert await _count(engine, "SELECT count(*) FROM seed_loads WHERE part = 'decisions'") == 0
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(text("UPDATE events SET note = 'rewritten' WHERE seq = 2"))
    async with engine.begin() as connection:
        await connection.run_sync(_to("head"))
    await prepare_database(engine, database_url)  # what `roadmap serve` does on start
    assert await _count(engine, "SELECT count(*) FROM decisions") == 4
    assert await _count(engine, "SELECT count(*) FROM events") == SEEDED_EVENTS
    await engine.dispose()


async def test_events_written_by_a_decision_refuse_a_downgrade(database_url: str) -> None:
    """An earlier release would take their hashes for tampering: the downgrade stops."""
    engine = create_engine(database_url)
    act = DecisionCreate(
        code="kept-act",
        title="Kept",
        body="Presidents",
        date=today_utc(),
        transitions=[DecisionTransition(program="kept", to_status=Status.COORDINATED)],
    )
    async with AsyncSession(engine) as session:
        editor = Actor(name="editor")
        await create_program(session, ProgramCreate(code="kept", title="Kept"), editor)
        await record_decision(session, act, editor)
        await session.commit()
    with pytest.raises(RuntimeError, match="cannot downgrade below 0007: 1 events"):
        async with engine.begin() as connection:
            await connection.run_sync(_to("0006"))
    assert await _count(engine, "SELECT count(*) FROM decisions") == 5
    await engine.dispose()
