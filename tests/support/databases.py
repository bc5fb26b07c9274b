"""The suite's databases: SQLite files by default, or databases made beside the one
TEST_DATABASE_URL names on a PostgreSQL server (see tests/conftest.py)."""

import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.db import create_engine

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def is_postgresql() -> bool:
    return bool(TEST_DATABASE_URL) and make_url(TEST_DATABASE_URL or "").get_backend_name() in (
        "postgresql",
        "postgres",
    )


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
