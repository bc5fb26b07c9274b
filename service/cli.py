"""The `roadmap` command: serve, migrate, seed, verify, keys, export, import, deliver."""

import argparse
import asyncio
import atexit
import logging
import logging.config
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import NoReturn, TypeVar

from alembic.util.exc import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service import archive
from service.audit.verify import digest_as_of, find_digest, verify_chains
from service.auth import service as auth_service
from service.auth.roles import Role
from service.auth.schemas import ApiKeyCreate
from service.config import Settings
from service.db import create_engine, create_sessionmaker
from service.db_url import parse_database_url, redacted
from service.errors import Problem
from service.log_config import logging_config
from service.schema_setup import current_revision, head_revision, prepare_database
from service.seed.loader import bundled_seed_files, load_seed_files

T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"roadmap: {message}", file=sys.stderr)
    raise SystemExit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a rule across settings; its message names the variables
            fail(f"unsafe or inconsistent settings: {message}")
        field = str(first["loc"][0])
        # Aliased fields (DATABASE_URL, PORT, WEB_CONCURRENCY) report their variable's name.
        variable = field if field.isupper() else f"ROADMAP_{field.upper()}"
        fail(f"{variable} is not valid: {message}")


def _reason(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def run_against_database(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` with an engine; a database that cannot be used ends the command in one line."""

    async def _run() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_run())
    except (TimeoutError, DBAPIError, OSError) as exc:
        fail(f"cannot use the database at {redacted(settings.database_url)}: {_reason(exc)}")
    except CommandError as exc:  # e.g. a schema revision this version does not know
        fail(f"cannot migrate the database at {redacted(settings.database_url)}: {exc}")


def missing_sqlite_file(settings: Settings) -> str | None:
    """The path of a SQLite database file that does not exist; connecting would create it empty."""
    url = parse_database_url(settings.database_url)
    on_disk = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    return url.database if on_disk and not Path(url.database or "").exists() else None


def require_existing_database(settings: Settings) -> None:
    """Commands that only read or manage an existing database must not create an empty SQLite
    file from a mistyped path."""
    missing = missing_sqlite_file(settings)
    if missing is not None:
        fail(f"no database at {missing} (run `roadmap migrate` to create one)")


def _prepare(settings: Settings, *, migrate: bool, seed: bool) -> None:
    report = run_against_database(
        settings,
        lambda engine: prepare_database(engine, settings.database_url, migrate=migrate, seed=seed),
    )
    if report is not None and (report.programs_created or report.milestones_added):
        print(
            f"roadmap: seeded {len(report.programs_created)} programmes "
            f"in {len(report.roadmaps_created)} roadmaps, {report.milestones_added} milestones, "
            f"{report.progress_reports_added} progress reports",
            file=sys.stderr,
        )


# How long `serve --no-migrate` waits for the database before starting without it.
DATABASE_PROBE_TIMEOUT_S = 5


def cmd_serve(args: argparse.Namespace) -> None:
    settings = load_settings()
    host, port, workers = _serve_options(args, settings)
    # Before any database work: a busy port ends the command at once, having changed nothing.
    listener = _bind(host, port)
    if settings.migrate_on_start and not args.no_migrate:
        _prepare(settings, migrate=True, seed=True)
    else:
        _warn_if_database_unusable(settings)
    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal to the handler
    # that was there before it; a no-op handler turns that into a clean exit with status 0,
    # which is what orchestrators expect of a requested stop.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    # Request metrics of every worker are aggregated through files in one directory
    # (prometheus_client's multiprocess mode); it must be set before the workers import.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir is None:
        metrics_dir = tempfile.mkdtemp(prefix="roadmap-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    _serve(listener, host, port, workers, settings)


def _serve_options(args: argparse.Namespace, settings: Settings) -> tuple[str, int, int]:
    """--port and --workers override PORT and WEB_CONCURRENCY (which Settings has checked) and
    are held to the same ranges: a port out of range would otherwise be taken as 'any free
    port', and --port 0 or --workers 0 as 'not given'."""
    port = settings.port if args.port is None else args.port
    if not 1 <= port <= 65535:
        fail(f"--port {port} is not a TCP port (1-65535)")
    workers = settings.web_concurrency if args.workers is None else args.workers
    if not 1 <= workers <= 64:
        fail(f"--workers {workers} is out of range (1-64)")
    return args.host, port, workers


def _cannot_listen(host: str, port: int, exc: OSError) -> NoReturn:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = exc.strerror or str(exc)  # "Address already in use", "Name or service not known"
    fail(f"cannot listen on {where}: {reason[:1].lower()}{reason[1:]}")


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn: uvicorn reports a busy port only
    among the JSON logs on stdout (with one worker, after the application has started), and was
    seen to hang there, deaf to SIGINT and SIGTERM. Listening starts later, in _serve, so that
    connections are refused rather than queued while the database is migrated."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn decides
    try:
        listener = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:  # e.g. an IPv6 address on a host without IPv6
        _cannot_listen(host, port, exc)
    try:
        # As uvicorn does: a restart need not wait for the old connections' TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        _cannot_listen(host, port, exc)
    listener.set_inheritable(True)
    return listener


def _serve(listener: socket.socket, host: str, port: int, workers: int, settings: Settings) -> None:
    """What uvicorn.run does, but on the socket bound by _bind."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_format, settings.log_level),
        access_log=False,  # service.logs writes one line per request instead
        proxy_headers=True,
        # In-flight requests get this long after SIGTERM; live streams end sooner, after the
        # event they are sending (audit.stream.SHUTDOWN_GRACE_SECONDS).
        timeout_graceful_shutdown=8,
    )
    try:
        # Two processes can both bind a port with SO_REUSEADDR; only one of them can listen.
        listener.listen(config.backlog)
    except OSError as exc:
        _cannot_listen(host, port, exc)
    # uvicorn logs this line only for sockets it bound itself.
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port
    )
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[listener]).run()
        else:
            server.run(sockets=[listener])
    except KeyboardInterrupt:  # as uvicorn.run: Ctrl-C is a requested stop
        pass
    if workers == 1 and not server.started:
        raise SystemExit(3)  # as uvicorn.run: the application failed to start


def _warn_if_database_unusable(settings: Settings) -> None:
    """`serve --no-migrate` starts even if the database is away or behind: /readyz answers 503
    until it is usable, which is what an orchestrator waits on, and the database may well come
    up after the service. But the operator hears of it now, not from the first request."""
    problem = _database_problem(settings)
    if problem is not None:
        print(
            f"roadmap: WARNING: {problem}; serving anyway, /readyz answers 503 until it is usable",
            file=sys.stderr,
        )


def _database_problem(settings: Settings) -> str | None:
    where = redacted(settings.database_url)
    missing = missing_sqlite_file(settings)
    if missing is not None:  # connecting would create it, empty
        return f"no database at {missing} (run `roadmap migrate` to create one)"

    async def schema_revision() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(current_revision)
        finally:
            await engine.dispose()

    try:
        revision = asyncio.run(asyncio.wait_for(schema_revision(), DATABASE_PROBE_TIMEOUT_S))
    except TimeoutError:
        return f"the database at {where} did not answer within {DATABASE_PROBE_TIMEOUT_S} s"
    except (DBAPIError, OSError) as exc:
        return f"cannot reach the database at {where}: {_reason(exc)}"
    expected = head_revision()
    if revision != expected:
        return f"the database at {where} has schema {revision!r}, this version needs {expected!r}"
    return None


def cmd_migrate(args: argparse.Namespace) -> None:
    _prepare(load_settings(), migrate=True, seed=not args.no_seed)


def cmd_seed(args: argparse.Namespace) -> None:
    settings = load_settings()
    paths = [Path(args.file)] if args.file else bundled_seed_files()
    for path in paths:
        if not path.is_file():
            fail(f"no such seed file: {path}")

    async def seed(engine: AsyncEngine) -> None:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            report = await load_seed_files(session, paths)
            await session.commit()
        print(
            f"roadmap: added {len(report.roadmaps_created)} roadmaps, "
            f"{len(report.programs_created)} programmes, {report.milestones_added} milestones, "
            f"{report.progress_reports_added} progress reports, {report.decisions_added} "
            f"decisions; corrected {report.milestones_corrected} milestones, "
            f"{report.progress_reports_corrected} progress reports"
        )

    try:
        run_against_database(settings, seed)
    except (ValueError, KeyError) as exc:
        fail(f"seed file rejected, nothing written: {exc}")


def cmd_verify(args: argparse.Namespace) -> None:
    settings = load_settings()
    require_existing_database(settings)

    async def verify(engine: AsyncEngine) -> bool:
        async with AsyncSession(engine) as session:
            report = await verify_chains(session)
            for mismatch in report.mismatches:
                where = f"event {mismatch.event_id}" if mismatch.event_id else "no event"
                print(f"MISMATCH {mismatch.program} {where}: {mismatch.reason}")
            print(
                f"{'ok' if report.ok else 'FAILED'}: {report.programs_checked} programmes, "
                f"{report.events_checked} events checked, {len(report.mismatches)} mismatches"
            )
            if args.digest is None:
                return report.ok
            return report.ok and await _check_digest(session, args.digest, args.at)

    if not run_against_database(settings, verify):
        raise SystemExit(1)


async def _check_digest(session: AsyncSession, digest: str, at: int | None) -> bool:
    if at is not None:
        try:
            found = (await digest_as_of(session, at)).digest == digest
        except LookupError as exc:
            print(f"digest: {exc}")
            return False
        where = f"as of event {at}"
    else:
        event_id = await find_digest(session, digest)
        found = event_id is not None
        where = f"as of event {event_id}" if found else "at any point of the history"
    print(f"digest {'matches' if found else 'does NOT match'} {where}")
    return found


def cmd_keys(args: argparse.Namespace) -> None:
    settings = load_settings()
    require_existing_database(settings)

    async def keys(engine: AsyncEngine) -> None:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            if args.keys_command == "create":
                key, token = await auth_service.create_key(
                    session, name=args.name, role=Role(args.role)
                )
                await session.commit()
                print(f"created key {key.name!r} with role {key.role}; its secret, shown once:")
                print(token)
            elif args.keys_command == "revoke":
                key = await auth_service.revoke_key(session, args.name)
                await session.commit()
                print(f"revoked key {key.name!r}")
            else:
                print(f"{'name':<24} {'role':<8} {'created':<20} {'last used':<20} revoked")
                for key in await auth_service.list_keys(session):
                    print(
                        f"{key.name:<24} {key.role:<8} {_when(key.created_at):<20} "
                        f"{_when(key.last_used_at):<20} {_when(key.revoked_at)}"
                    )

    try:
        run_against_database(settings, keys)
    except Problem as problem:
        fail(problem.detail)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def cmd_export(args: argparse.Namespace) -> None:
    settings = load_settings()
    path = Path(args.file)
    try:
        archive.check_export_source(settings.database_url)
        with archive.written_in_place(path) as out:
            summary = run_against_database(
                settings, lambda engine: archive.export_database(engine, out)
            )
    except archive.ArchiveError as exc:
        fail(f"export failed, no file written: {exc}")
    print(f"exported {summary.describe()} to {path}; audit digest {summary.digest}")


def cmd_import(args: argparse.Namespace) -> None:
    settings = load_settings()
    try:
        export = archive.read_export(Path(args.file))
        summary = run_against_database(
            settings,
            lambda engine: archive.import_database(engine, settings.database_url, export),
        )
    except archive.ArchiveError as exc:
        fail(f"import refused, nothing written: {exc}")
    print(f"imported {summary.describe()}; audit digest {summary.digest}")


def cmd_deliver(args: argparse.Namespace) -> None:
    """Deliver webhooks until SIGTERM or SIGINT, beside servers started with
    ROADMAP_WEBHOOK_DISPATCH=false (or beside ones that dispatch too: subscriptions are leased,
    so each is delivered by one of them at a time)."""
    settings = load_settings()
    require_existing_database(settings)
    logging.config.dictConfig(logging_config(settings.log_format, settings.log_level))

    # Imported here, not at the top: it defines a Prometheus metric, and prometheus_client
    # picks its value store (shared files or memory) when first imported, which must come
    # after `serve` has set PROMETHEUS_MULTIPROC_DIR for its workers.
    from service.webhooks.dispatch import Dispatcher

    async def deliver(engine: AsyncEngine) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        dispatcher = Dispatcher(create_sessionmaker(engine), settings)
        logging.getLogger("roadmap.webhooks").info("delivering webhooks as %s", dispatcher.name)
        await dispatcher.run(stopping)

    run_against_database(settings, deliver)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roadmap", description="The Union State roadmap tracker.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, seed an empty database, and serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT, else 8000")
    serve.add_argument(
        "--workers", type=int, default=None, help="default: $WEB_CONCURRENCY, else 1"
    )
    serve.add_argument(
        "--no-migrate", action="store_true", help="skip migration and seeding (done elsewhere)"
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending migrations; seed if empty")
    migrate.add_argument("--no-seed", action="store_true", help="do not seed an empty database")
    migrate.set_defaults(handler=cmd_migrate)

    seed = commands.add_parser("seed", help="load roadmap files; existing entries are kept")
    seed.add_argument("--file", help="a roadmap file (default: the bundled ones)")
    seed.set_defaults(handler=cmd_seed)

    verify = commands.add_parser(
        "verify", help="recompute every hash chain; exit 1 on any mismatch"
    )
    verify.add_argument("--digest", help="also prove the history had this digest (audit/digest)")
    verify.add_argument("--at", type=int, help="the digest's last_event_id (faster)")
    verify.set_defaults(handler=cmd_verify)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, type=_key_name)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    key_commands.add_parser("list", help="names, roles, creation and last use (no secrets)")
    revoke = key_commands.add_parser("revoke", help="revoke a key at once, on every worker")
    revoke.add_argument("name")
    keys.set_defaults(handler=cmd_keys)

    export = commands.add_parser(
        "export", help="write the whole database but API keys to one JSON file"
    )
    export.add_argument("file", help="the file to write (replaced if it exists)")
    export.set_defaults(handler=cmd_export)

    import_ = commands.add_parser(
        "import", help="load an export into an empty database, migrating it first"
    )
    import_.add_argument("file", help="a file written by `roadmap export`")
    import_.set_defaults(handler=cmd_import)

    deliver = commands.add_parser(
        "deliver", help="deliver webhooks until stopped (a dispatcher of its own)"
    )
    deliver.set_defaults(handler=cmd_deliver)
    return parser


def _key_name(value: str) -> str:
    try:
        return ApiKeyCreate(name=value, role=Role.VIEWER).name
    except ValidationError:
        raise argparse.ArgumentTypeError(
            "use letters, digits and . _ @ - (at most 100 characters)"
        ) from None


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)
