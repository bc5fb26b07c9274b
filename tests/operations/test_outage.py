"""When the database cannot serve: a 503 problem to retry, with Retry-After, never a 500.

The errors are the real ones, raised by real databases: a PostgreSQL cluster of the test's own
that is stopped and started under a running server, a SQLite file opened read-only, locks held
past the lock timeout. Clients use `raise_app_exceptions=True` where it matters: an error that
escapes every handler is re-raised by Starlette, and a real server then drops the client's
keep-alive connection, so that must fail the test too.
"""

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from sqlalchemy import Executable, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service import main
from service.auth.roles import Role
from service.auth.service import create_key
from service.clock import utc_now
from service.config import Settings
from service.db import create_engine
from service.errors import DatabaseTrouble, database_trouble
from service.main import create_app
from service.models.keys import ApiKey
from service.programs.service import LOCK_PROGRAM
from service.schema_setup import prepare_database
from tests.support.builders import API, bearer
from tests.support.databases import is_postgresql
from tests.support.servers import free_port, start_server

PROBLEM = "application/problem+json"
UNAVAILABLE = "urn:roadmap:problem:database-unavailable"
BUSY = "urn:roadmap:problem:database-busy"

only_postgresql = pytest.mark.skipif(not is_postgresql(), reason="needs PostgreSQL")


def assert_retryable(response: httpx.Response, problem_type: str, retry_after: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == retry_after
    assert response.json()["type"] == problem_type
    assert "Traceback" not in response.text


async def raised_by(
    engine: AsyncEngine, *statements: str | Executable, params: dict[str, Any] | None = None
) -> BaseException:
    """The error the statements raise, run in one transaction."""
    try:
        async with engine.begin() as connection:
            for statement in statements:
                executable = text(statement) if isinstance(statement, str) else statement
                await connection.execute(executable, params)
    except Exception as exc:
        return exc
    raise AssertionError(f"{statements} raised nothing")


def sqlite_path(database_url: str) -> str:
    return make_url(database_url).database or ""


# --- Which errors are the database failing to serve ---


async def test_sqlite_refusing_to_serve_is_database_trouble(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url, lock_timeout_ms=50)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY, b BLOB)"))
    # Bugs and refusals of the request, not of the database:
    assert database_trouble(await raised_by(engine, "SELEC 1")) is None
    assert database_trouble(await raised_by(engine, "SELECT * FROM no_such_table")) is None
    duplicate = await raised_by(
        engine, "INSERT INTO t (x) VALUES (1)", "INSERT INTO t (x) VALUES (1)"
    )
    assert isinstance(duplicate, sqlalchemy.exc.IntegrityError)
    assert database_trouble(duplicate) is None

    holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    locked = await raised_by(engine, "INSERT INTO t (x) VALUES (2)")
    holder.execute("ROLLBACK")
    holder.close()
    assert "database is locked" in str(locked)
    assert database_trouble(locked) is DatabaseTrouble.BUSY

    async with engine.connect() as connection:
        pages = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
        await connection.execute(text(f"PRAGMA max_page_count = {pages}"))  # a full disk
        with pytest.raises(sqlalchemy.exc.OperationalError) as full:
            await connection.execute(text("INSERT INTO t VALUES (10, zeroblob(100000))"))
    assert "database or disk is full" in str(full.value)
    assert database_trouble(full.value) is DatabaseTrouble.UNAVAILABLE
    await engine.dispose()

    read_only = create_engine(f"sqlite:///file:{sqlite_path(url)}?mode=ro&uri=true")
    refused = await raised_by(read_only, "INSERT INTO t (x) VALUES (3)")
    assert "attempt to write a readonly database" in str(refused)
    assert database_trouble(refused) is DatabaseTrouble.UNAVAILABLE
    await read_only.dispose()

    nowhere = create_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'db.sqlite'}")
    cannot_open = await raised_by(nowhere, "SELECT 1")
    assert "unable to open database file" in str(cannot_open)
    assert database_trouble(cannot_open) is DatabaseTrouble.UNAVAILABLE
    await nowhere.dispose()


async def test_an_unreachable_postgresql_is_database_trouble(tmp_path: Path) -> None:
    """Needs no PostgreSQL: connecting to nothing is the point."""
    for url in (
        f"postgresql://postgres@127.0.0.1:{free_port()}/roadmap",  # refused
        f"postgresql://postgres@/roadmap?host={tmp_path}",  # no Unix socket there
    ):
        engine = create_engine(url)
        unreachable = await raised_by(engine, "SELECT 1")
        await engine.dispose()
        assert isinstance(unreachable, OSError)
        assert database_trouble(unreachable) is DatabaseTrouble.UNAVAILABLE, unreachable
    # The same kind of error from the service's own code is a bug.
    with pytest.raises(FileNotFoundError) as missing:
        (tmp_path / "missing").read_text()
    assert database_trouble(missing.value) is None
    assert database_trouble(RuntimeError("connection is closed")) is None


@only_postgresql
async def test_postgresql_refusing_to_serve_is_database_trouble(database_url: str) -> None:
    engine = create_engine(database_url, lock_timeout_ms=100, statement_timeout_ms=300)
    holder = create_engine(database_url)
    assert database_trouble(await raised_by(engine, "SELEC 1")) is None
    assert database_trouble(await raised_by(engine, "SELECT 1 / 0")) is None
    duplicate = await raised_by(
        engine,
        "CREATE TEMPORARY TABLE t (x INTEGER PRIMARY KEY)",
        "INSERT INTO t VALUES (1), (1)",
    )
    assert isinstance(duplicate, sqlalchemy.exc.IntegrityError)
    assert database_trouble(duplicate) is None

    slow = await raised_by(engine, "SELECT pg_sleep(2)")
    assert "statement timeout" in str(slow)
    assert database_trouble(slow) is DatabaseTrouble.BUSY
    async with holder.begin() as connection:
        await connection.execute(LOCK_PROGRAM, {"code": "transport"})
        locked = await raised_by(engine, LOCK_PROGRAM, params={"code": "transport"})
    assert "lock timeout" in str(locked)
    assert database_trouble(locked) is DatabaseTrouble.BUSY
    for sqlstate in ("40P01", "40001"):  # a deadlock, a serialization failure: retry them
        raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'retry' USING ERRCODE = '{sqlstate}'; END $$"
        assert database_trouble(await raised_by(engine, raise_it)) is DatabaseTrouble.BUSY

    read_only = await raised_by(
        engine, "SET TRANSACTION READ ONLY", "UPDATE programs SET title = title WHERE false"
    )
    assert database_trouble(read_only) is DatabaseTrouble.UNAVAILABLE

    # The connection dies in the middle of a statement, as when the server shuts down.
    async with engine.connect() as victim:
        pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        sleeping = asyncio.create_task(victim.execute(text("SELECT pg_sleep(0.25)")))
        async with holder.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(sqlalchemy.exc.DBAPIError) as terminated:
            await sleeping
    assert terminated.value.connection_invalidated
    assert database_trouble(terminated.value) is DatabaseTrouble.UNAVAILABLE
    await engine.dispose()
    await holder.dispose()


# --- The service's engines ---


async def test_only_the_serving_engine_has_timeouts(database_url: str) -> None:
    """The CLI's engines have none: `migrate` waits for the other replicas' start-up lock."""
    for options, expected in (
        ({"lock_timeout_ms": 1234, "statement_timeout_ms": 5678}, ("1234ms", "5678ms", 1234)),
        ({}, ("0", "0", 10_000)),
    ):
        engine = create_engine(database_url, **options)
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                lock = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
                statement = (await connection.execute(text("SHOW statement_timeout"))).scalar_one()
                assert (lock, statement) == expected[:2]
            else:
                busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
                assert busy == expected[2]
        await engine.dispose()


def test_the_timeouts_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROADMAP_DB_LOCK_TIMEOUT_MS", raising=False)
    monkeypatch.delenv("ROADMAP_DB_STATEMENT_TIMEOUT_MS", raising=False)
    assert (Settings().db_lock_timeout_ms, Settings().db_statement_timeout_ms) == (5000, 15_000)
    monkeypatch.setenv("ROADMAP_DB_LOCK_TIMEOUT_MS", "250")
    monkeypatch.setenv("ROADMAP_DB_STATEMENT_TIMEOUT_MS", "0")
    assert (Settings().db_lock_timeout_ms, Settings().db_statement_timeout_ms) == (250, 0)


# --- In-process: what a client gets ---


def forward_timeouts(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Give create_app's engine the settings' timeouts, as service.main is to pass them
    (setdefault: once it does, its own arguments win, and they are the same)."""

    def engine_with_timeouts(database_url: str, **options: Any) -> AsyncEngine:
        options.setdefault("lock_timeout_ms", settings.db_lock_timeout_ms)
        options.setdefault("statement_timeout_ms", settings.db_statement_timeout_ms)
        return create_engine(database_url, **options)

    monkeypatch.setattr(main, "create_engine", engine_with_timeouts)


@contextlib.asynccontextmanager
async def serving(settings: Settings, token: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)  # an escaped error fails the test
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=bearer(token)
        ) as client:
            yield client


@contextlib.asynccontextmanager
async def programme_write_lock(database_url: str, code: str) -> AsyncIterator[None]:
    """Hold a programme's write lock from elsewhere: PostgreSQL's advisory lock on its code (see
    programs.service.lock_program), SQLite's lock on the whole file."""
    if is_postgresql():
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(LOCK_PROGRAM, {"code": code})
            yield
        await engine.dispose()
        return
    holder = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_an_unreachable_database_is_a_503_to_retry(
    api_tokens: Mapping[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/roadmap")
    async with serving(settings, api_tokens["editor"]) as http:
        requests = [
            http.get(f"{API}/programs"),
            http.get(f"{API}/programs/transport"),
            http.patch(f"{API}/programs/transport", json={"summary": "during the outage"}),
            http.post(f"{API}/programs/transport/transitions", json={"to_status": "draft"}),
        ]
        for request in requests:
            assert_retryable(await request, UNAVAILABLE, "5")
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("database unavailable on GET /api/v1/programs:" in w for w in warnings), warnings
    assert any("on PATCH /api/v1/programs/transport:" in w for w in warnings), warnings


async def test_a_lock_held_past_the_lock_timeout_is_a_503_to_retry(
    database_url: str, api_tokens: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await mark_key_used(database_url, "test-editor")
    settings = Settings(database_url=database_url, db_lock_timeout_ms=300)
    forward_timeouts(monkeypatch, settings)
    async with serving(settings, api_tokens["editor"]) as http:
        async with programme_write_lock(database_url, "transport"):
            started = time.monotonic()
            patch = http.patch(f"{API}/programs/transport", json={"summary": "queued"})
            queued = await asyncio.wait_for(patch, timeout=8)
            waited = time.monotonic() - started
        assert_retryable(queued, BUSY, "1")
        assert waited < 4, f"waited {waited:.1f} s: cut by something else than the lock timeout"
        patch = http.patch(f"{API}/programs/transport", json={"summary": "free again"})
        assert (await patch).status_code == 200


@only_postgresql
async def test_a_statement_past_the_statement_timeout_is_a_503_to_retry(
    database_url: str, api_tokens: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        database_url=database_url, db_lock_timeout_ms=30_000, db_statement_timeout_ms=300
    )
    forward_timeouts(monkeypatch, settings)
    async with (
        serving(settings, api_tokens["editor"]) as http,
        programme_write_lock(database_url, "transport"),
    ):
        patch = http.patch(f"{API}/programs/transport", json={"summary": "queued"})
        assert_retryable(await asyncio.wait_for(patch, timeout=8), BUSY, "1")


async def mark_key_used(database_url: str, key_name: str) -> None:
    """Record the key's use now, so that authenticating with it writes nothing for a while and
    a write route's own write is the one that meets the database's refusal."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        used = update(ApiKey).where(ApiKey.name == key_name).values(last_used_at=utc_now())
        await connection.execute(used)
    await engine.dispose()


async def make_read_only(database_url: str) -> str:
    """The URL of the same database, refusing writes: a SQLite file opened read-only (its file
    mode would not stop root); a PostgreSQL database whose transactions are read-only, as on a
    standby."""
    if not is_postgresql():
        return f"sqlite:///file:{sqlite_path(database_url)}?mode=ro&uri=true"
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        name = make_url(database_url).database
        await connection.execute(
            text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        )
    await engine.dispose()
    return database_url


async def test_a_database_that_refuses_writes_is_a_503_and_not_ready(
    database_url: str, api_tokens: Mapping[str, str]
) -> None:
    await mark_key_used(database_url, "test-editor")
    read_only = await make_read_only(database_url)
    async with serving(Settings(database_url=read_only), api_tokens["editor"]) as http:
        patch = http.patch(f"{API}/programs/transport", json={"summary": "refused"})
        assert_retryable(await patch, UNAVAILABLE, "5")
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert "cannot take writes" in ready.json()["detail"]
        read = await http.get(f"{API}/programs/transport")
        assert read.status_code == 200, read.text


async def test_a_database_that_takes_writes_is_ready(
    database_url: str, client: httpx.AsyncClient
) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    async with programme_write_lock(database_url, "transport"):
        # Another writer holding the lock shows the database writable: still ready.
        assert (await client.get("/readyz")).status_code == 200


@pytest.mark.skipif(is_postgresql(), reason="the free space is checked for SQLite only")
async def test_a_full_disk_is_not_ready(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk cannot be filled here without mounting one: the free space it reports is made up."""
    statvfs = os.statvfs

    def nearly_full(path: str) -> Any:
        real = statvfs(path)
        return SimpleNamespace(f_frsize=real.f_frsize, f_bavail=1)

    monkeypatch.setattr(os, "statvfs", nearly_full)
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "the disk holding the database is full" in ready.json()["detail"]


async def test_a_bug_in_sql_is_still_a_500(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Not every database error is an outage: a bad statement or a broken constraint is a bug."""

    async def run(*statements: str) -> None:
        async with app.state.engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))

    @app.get("/bad-sql")
    async def bad_sql() -> None:
        await run("SELEC 1")

    @app.get("/duplicate")
    async def duplicate() -> None:
        await run(
            "CREATE TEMPORARY TABLE t (x INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1), (1)"
        )

    for path in ("/bad-sql", "/duplicate"):
        response = await client.get(path)
        assert response.status_code == 500, response.text
        assert "retry-after" not in response.headers


# --- A real outage: a PostgreSQL cluster stopped and started under a running server ---

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


@dataclass
class Cluster:
    """A PostgreSQL cluster of the test's own, on a free port, to stop and start at will."""

    data: Path
    port: int

    def _run(self, program: str, *args: str) -> None:
        # PostgreSQL refuses to run as root: run it as the postgres user then.
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        command = [*as_postgres, str((PG_BIN or Path()) / program), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        options = ["-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions"]
        self._run("initdb", "-D", str(self.data / "db"), *options)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.data / "server.log")
        self._run("pg_ctl", "-D", str(self.data / "db"), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data / "db"), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if PG_BIN is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    data = Path(tempfile.mkdtemp(prefix="roadmap-outage-"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(data, postgres.pw_uid, postgres.pw_gid)
    own = Cluster(data, free_port())
    try:
        own.init()
        own.start()
        yield own
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            own.stop("immediate")
        shutil.rmtree(data, ignore_errors=True)


async def migrated_and_seeded(cluster: Cluster) -> tuple[str, str]:
    """A database on the cluster, ready to serve, and an editor's token."""
    admin = create_engine(cluster.url("postgres"))
    async with admin.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("CREATE DATABASE roadmap"))
    await admin.dispose()
    url = cluster.url("roadmap")
    engine = create_engine(url)
    await prepare_database(engine, url)
    async with AsyncSession(engine) as session:
        _, token = await create_key(session, name="outage-editor", role=Role.EDITOR)
        await session.commit()
    await engine.dispose()
    return url, token


def on_one_connection(
    base_url: str, token: str, requests: list[tuple[str, str, Any]]
) -> list[tuple[int, dict[str, str], str]]:
    """The requests in turn on one keep-alive connection; fails if the server drops it."""
    address = base_url.removeprefix("http://")
    connection = http.client.HTTPConnection(address, timeout=10)
    answers = []
    socket_used = None
    try:
        for method, path, body in requests:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            connection.request(method, path, json.dumps(body) if body else None, headers)
            response = connection.getresponse()
            answers.append((response.status, dict(response.getheaders()), response.read().decode()))
            assert connection.sock is not None, f"the server closed the connection after {path}"
            socket_used = socket_used or connection.sock.getsockname()
            assert connection.sock.getsockname() == socket_used
    finally:
        connection.close()
    return answers


def in_parallel(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Each on its own connection, so that every worker gets some."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def until_ok(call: Callable[[], httpx.Response], seconds: float = 20) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while (response := call()).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    return response


@pytest.mark.live
@only_postgresql
def test_a_postgresql_outage_is_503s_and_the_server_recovers_without_a_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    url, token = asyncio.run(migrated_and_seeded(cluster))
    server = start_server(url, tmp_path / "server.log", workers=2)
    headers = bearer(token)
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            acknowledged: dict[int, str] = {}

            def write(n: int) -> httpx.Response:
                return httpx.patch(
                    f"{server.base_url}{API}/programs/transport",
                    headers=headers,
                    json={"summary": f"write {n}"},
                    timeout=10,
                )

            def read() -> httpx.Response:
                return httpx.get(f"{server.base_url}{API}/programs/gas_market", timeout=10)

            for n in range(5):
                response = write(n)
                assert response.status_code == 200, response.text
                acknowledged[response.json()["event"]["id"]] = response.json()["event"]["hash"]

            # Kept by both workers, so that the reads after the restart are answered from
            # their caches (service.cached_answers), whose pooled connections are dead too.
            assert [r.status_code for r in in_parallel([read] * 12)] == [200] * 12
            # A restart while the server idles: its pooled connections are dead, and none of
            # them may reach a request.
            cluster.stop("fast")
            cluster.start()
            answers = in_parallel([read] * 12)
            assert [r.status_code for r in answers] == [200] * 12, [
                r.text for r in answers if r.status_code != 200
            ]

            # An outage: the cluster crashes.
            cluster.stop("immediate")
            during = on_one_connection(
                server.base_url,
                token,
                [
                    ("GET", f"{API}/programs", None),
                    ("GET", f"{API}/programs/gas_market", None),
                    ("PATCH", f"{API}/programs/transport", {"summary": "during the outage"}),
                    ("POST", f"{API}/programs/transport/transitions", {"to_status": "draft"}),
                    ("GET", f"{API}/events", None),
                    ("GET", "/readyz", None),
                    ("GET", "/healthz", None),
                ],
            )
            for status, answer_headers, body in during[:-2]:
                assert status == 503, body
                assert answer_headers["content-type"] == PROBLEM
                assert answer_headers["retry-after"] == "5"
                assert json.loads(body)["type"] == UNAVAILABLE
            assert during[-2][0] == 503  # /readyz
            assert during[-1][0] == 200  # /healthz

            # Back: the same server serves again, without a restart.
            cluster.start()
            assert until_ok(read).status_code == 200
            after = until_ok(lambda: write(99))
            acknowledged[after.json()["event"]["id"]] = after.json()["event"]["hash"]
            assert [r.status_code for r in in_parallel([read] * 12)] == [200] * 12
            assert client.get("/readyz").status_code == 200

            events = client.get(f"{API}/events", params={"program": "transport", "limit": 500})
            stored = {event["id"]: event["hash"] for event in events.json()["items"]}
            assert {i: stored.get(i) for i in acknowledged} == acknowledged
            report = client.get(f"{API}/audit/verify").json()
            assert report["ok"], report["mismatches"][:5]
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert "database unavailable on PATCH /api/v1/programs/transport" in log
    assert "Exception in ASGI application" not in log
    assert "unhandled error" not in log
