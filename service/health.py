"""Liveness and readiness, for orchestrators and load balancers."""

import logging
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import (
    DatabaseTrouble,
    brief,
    database_trouble,
    problem_response,
    problem_responses,
)
from service.schema_setup import current_revision

router = APIRouter(tags=["health"])
logger = logging.getLogger("service.health")

# Below this much free space where the SQLite file lives, the next commits may fail with
# "database or disk is full"; a WAL commit needs a few pages, so this leaves a wide margin.
MIN_FREE_DISK_BYTES = 8 * 2**20


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    schema_revision: str | None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up. Touches no database, so a slow database never restarts a healthy pod."""
    return Health(status="ok")


def _sqlite_write_refusal(connection: Connection) -> str | None:
    """Why this SQLite database cannot take writes now, or None.

    A write that matches no row still takes the write lock, so a read-only file or connection
    fails it at once, and it is rolled back with nothing written. (BEGIN IMMEDIATE alone does
    not tell: in WAL mode SQLite grants it to a read-only connection.) A full disk only shows
    when a commit writes, so the free space is checked instead.
    """
    busy_timeout = connection.execute(text("PRAGMA busy_timeout")).scalar()
    connection.execute(text("PRAGMA busy_timeout = 0"))  # a probe does not queue for the lock
    try:
        connection.execute(text("DELETE FROM alembic_version WHERE 0"))
    except DBAPIError as exc:
        trouble = database_trouble(exc)
        if trouble is None:
            raise
        # BUSY: another writer holds the lock, which shows the file writable.
        if trouble is DatabaseTrouble.UNAVAILABLE:
            return str(exc.orig)  # e.g. "attempt to write a readonly database"
    finally:
        connection.execute(text(f"PRAGMA busy_timeout = {int(busy_timeout or 0)}"))
        connection.rollback()
    files = [row.file for row in connection.execute(text("PRAGMA main.database_list"))]
    if files and files[0]:  # "" for an in-memory database
        disk = os.statvfs(os.path.dirname(files[0]))
        if disk.f_bavail * disk.f_frsize < MIN_FREE_DISK_BYTES:
            return "the disk holding the database is full"
    return None


def _postgresql_write_refusal(connection: Connection) -> str | None:
    # On while the server is a standby, or when the database is set read-only.
    read_only = connection.execute(text("SELECT current_setting('transaction_read_only')"))
    return "the database is read-only" if read_only.scalar() == "on" else None


def write_refusal(connection: Connection) -> str | None:
    """Why the database cannot take writes now (None: it can), found without writing."""
    if connection.dialect.name == "sqlite":
        return _sqlite_write_refusal(connection)
    return _postgresql_write_refusal(connection)


def _not_ready(detail: str, reason: str) -> JSONResponse:
    logger.warning("not ready: %s", reason)
    return problem_response(503, detail)


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(request: Request) -> Readiness | JSONResponse:
    """The database answers, its schema is the one this code expects, and it takes writes."""
    engine: AsyncEngine = request.app.state.engine
    expected: str | None = request.app.state.head_revision
    try:
        async with engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
            refusal = await connection.run_sync(write_refusal) if revision == expected else None
    except Exception as exc:  # any failure to use the database means "not ready"
        return _not_ready("The database cannot be reached.", brief(exc))
    if revision != expected:
        return problem_response(
            503, f"The database schema is at {revision!r}, this service expects {expected!r}."
        )
    if refusal is not None:
        return _not_ready(f"The database cannot take writes: {refusal}.", refusal)
    return Readiness(status="ready", schema_revision=revision)
