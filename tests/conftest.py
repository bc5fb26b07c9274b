"""Test harness: every test gets its own database, cloned from one built by the migrations.

The service commits for real (that is what is under test), so tests cannot share a database and
roll back. Instead a template database is migrated and seeded once per run, and each test gets
a copy: a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL. Set TEST_DATABASE_URL
to a PostgreSQL database to run the suite there: the template and the copies are created beside
it (named after it) and dropped at the end.
"""

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.auth.roles import Role
from service.auth.service import create_key, revoke_key
from service.config import Settings
from service.db import create_engine
from service.main import create_app
from service.schema_setup import prepare_database
from tests.live import LiveServer, start_server

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def is_postgresql() -> bool:
    return bool(TEST_DATABASE_URL) and make_url(TEST_DATABASE_URL or "").get_backend_name() in (
        "postgresql",
        "postgres",
    )


@pytest.fixture(scope="session")
async def template_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh database to migrate and seed once: a file on SQLite; on PostgreSQL a new database
    beside the one TEST_DATABASE_URL names, so reruns never see an earlier run's data."""
    if not is_postgresql():
        yield f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.db'}"
        return
    url = await create_database_beside(TEST_DATABASE_URL or "")
    yield url
    await drop_database(url)


# Tokens of the keys every test database has: one per role, plus one revoked key.
API_TOKENS: dict[str, str] = {}


async def _create_test_keys(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        for role in Role:
            _, API_TOKENS[role.value] = await create_key(session, name=f"test-{role}", role=role)
        _, API_TOKENS["revoked"] = await create_key(session, name="test-revoked", role=Role.ADMIN)
        await revoke_key(session, "test-revoked")
        await session.commit()


@pytest.fixture(scope="session")
async def seeded_template(template_url: str) -> str:
    engine = create_engine(template_url)
    await prepare_database(engine, template_url)
    await _create_test_keys(engine)
    await engine.dispose()  # SQLite folds its WAL back into the file; PG frees the template
    return template_url


@pytest.fixture(scope="session")
def api_tokens(seeded_template: str) -> dict[str, str]:
    return API_TOKENS


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _server_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


async def create_database_beside(url: str, *, template: str | None = None) -> str:
    """A new PostgreSQL database named after the one in `url` (optionally copied from
    `template`); returns its URL."""
    name = f"{make_url(url).database}_{uuid.uuid4().hex[:10]}"
    copy_from = f' TEMPLATE "{template}"' if template else ""
    engine = create_engine(_server_url(url))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(f'CREATE DATABASE "{name}"{copy_from}'))
    await engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def clone_database(template: str, tmp_path: Path) -> str:
    if not is_postgresql():
        copy = tmp_path / "test.db"
        shutil.copyfile(make_url(template).database or "", copy)
        return f"sqlite:///{copy}"
    return await create_database_beside(template, template=make_url(template).database)


async def drop_database(url: str) -> None:
    if not is_postgresql():
        return
    engine = create_engine(_server_url(url))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        name = make_url(url).database
        await autocommit.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture
async def database_url(seeded_template: str, tmp_path: Path) -> AsyncIterator[str]:
    url = await clone_database(seeded_template, tmp_path)
    yield url
    await drop_database(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI, api_tokens: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that holds an editor key, as most tests act as an editor."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=bearer(api_tokens["editor"])
    ) as http:
        yield http


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture(scope="module")
async def live_database(
    seeded_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    url = await clone_database(seeded_template, tmp_path_factory.mktemp("live"))
    yield url
    await drop_database(url)


@pytest.fixture(scope="module")
def live(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real `serve --workers 4` on its own copy of the seeded database, one per test module."""
    server = start_server(live_database, tmp_path_factory.mktemp("logs") / "server.log")
    yield server
    assert server.stop() == 0, "the server did not stop cleanly on SIGTERM"


LIVE_FIXTURES = {"live", "live_database", "crash_database"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start real server processes are `live`: `pytest -m "not live"` is the quick
    loop (the live ones are marked by hand where they start servers themselves)."""
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
