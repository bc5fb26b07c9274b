"""Test harness: every test gets its own database, cloned from one built by the migrations.

The service commits for real (that is what is under test), so tests cannot share a database and
roll back. Instead a template database is migrated and seeded once per run, and each test gets
a copy: a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL. Set TEST_DATABASE_URL
to a PostgreSQL database to run the suite there: the template and the copies are created beside
it (named after it) and dropped at the end.
"""

import gc
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.auth.roles import Role
from service.auth.service import create_key, revoke_key
from service.config import Settings
from service.db import create_engine
from service.main import create_app
from service.schema_setup import prepare_database
from tests.support.builders import bearer
from tests.support.cli import Cli, run_cli
from tests.support.databases import (
    TEST_DATABASE_URL,
    clone_database,
    create_database_beside,
    drop_database,
    is_postgresql,
)
from tests.support.hypothesis_profiles import load_profile
from tests.support.servers import LiveServer, start_server

# Most tests change statuses without citing a source, which a default server refuses
# (ROADMAP_REQUIRE_SOURCES); the tests of that rule turn it back on. Servers started by tests
# inherit it.
os.environ.setdefault("ROADMAP_REQUIRE_SOURCES", "false")
# Nor do most tests want a webhook dispatcher beside them, changing rows while they compare
# the database before and after a request; the webhook tests start one (tests/webhooks).
os.environ.setdefault("ROADMAP_WEBHOOK_DISPATCH", "false")


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


@dataclass(frozen=True)
class Template:
    url: str
    # Tokens of the keys every copy has: one per role (by its value), and "revoked".
    tokens: Mapping[str, str]


async def _create_test_keys(engine: AsyncEngine) -> dict[str, str]:
    tokens: dict[str, str] = {}
    async with AsyncSession(engine) as session:
        for role in Role:
            _, tokens[role.value] = await create_key(session, name=f"test-{role}", role=role)
        _, tokens["revoked"] = await create_key(session, name="test-revoked", role=Role.ADMIN)
        await revoke_key(session, "test-revoked")
        await session.commit()
    return tokens


@pytest.fixture(scope="session")
async def template(template_url: str) -> Template:
    """The template migrated, seeded and given the test keys, before any test copies it."""
    engine = create_engine(template_url)
    await prepare_database(engine, template_url)
    tokens = await _create_test_keys(engine)
    await engine.dispose()  # SQLite folds its WAL back into the file; PG frees the template
    return Template(template_url, MappingProxyType(tokens))


@pytest.fixture(scope="session")
def seeded_template(template: Template) -> str:
    return template.url


@pytest.fixture(scope="session")
def api_tokens(template: Template) -> Mapping[str, str]:
    """Read-only: the same keys for every test, as every copy of the template has them."""
    return template.tokens


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


def in_process(app: FastAPI, headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    """A client of the app in this process; errors come back as answers, as a server's would."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


@pytest.fixture
async def client(app: FastAPI, api_tokens: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that holds an editor key, as most tests act as an editor."""
    async with in_process(app, bearer(api_tokens["editor"])) as http:
        yield http


@pytest.fixture
async def admin(app: FastAPI, api_tokens: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that holds an admin key: keys and webhooks."""
    async with in_process(app, bearer(api_tokens["admin"])) as http:
        yield http


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app) as http:
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


@pytest.fixture(scope="session")
def cli() -> Cli:
    """Runs the `roadmap` command in a process of its own, as a user runs it."""
    return run_cli


def is_quick(config: pytest.Config) -> bool:
    """The quick loop is `pytest -m "not live"`."""
    return " ".join(str(config.getoption("markexpr", "")).split()) == "not live"


def pytest_configure(config: pytest.Config) -> None:
    """The quick loop tries fewer Hypothesis examples (tests/support/hypothesis_profiles.py);
    any other run tries them all. --hypothesis-profile overrides both."""
    if not config.getoption("hypothesis_profile", None):
        load_profile(quick=is_quick(config))


WHOLLY_LIVE = re.compile(r"^pytestmark = pytest\.mark\.live\b", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The quick loop does not even import a module that is live as a whole (it says so with a
    module-level `pytestmark = pytest.mark.live`): schemathesis alone takes seconds to build its
    cases. Any other run collects it, and deselects by marker as usual."""
    if collection_path.suffix == ".py" and is_quick(config):
        return bool(WHOLLY_LIVE.search(collection_path.read_text(encoding="utf-8"))) or None
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Garbage collection took a sixth of the quick loop: every request allocates thousands of
    short-lived objects, and with Python's default thresholds (700, 10, 10) the collector ran
    some 6,000 times, walking what the test modules imported each full round. Collect less often,
    and leave out what lives to the end anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


# A test that takes one of these (itself or through another fixture) starts real processes.
LIVE_FIXTURES = {"live", "live_database", "crash_database", "cli"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start real processes are `live`: `pytest -m "not live"` is the quick loop
    (those that start processes without one of LIVE_FIXTURES are marked by hand)."""
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
