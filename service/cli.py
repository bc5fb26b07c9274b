"""The `roadmap` command: serve, migrate, seed."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.config import Settings
from service.db import create_engine
from service.db_url import redacted
from service.schema_setup import prepare_database
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
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        if name == "DATABASE_URL":
            fail(f"DATABASE_URL is not usable: {first['msg'].removeprefix('Value error, ')}")
        fail(f"ROADMAP_{name} is not valid: {first['msg']}")


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


def _prepare(settings: Settings, *, migrate: bool, seed: bool) -> None:
    report = run_against_database(
        settings,
        lambda engine: prepare_database(engine, settings.database_url, migrate=migrate, seed=seed),
    )
    if report is not None:
        print(
            f"roadmap: seeded {len(report.programs_created)} programmes "
            f"in {len(report.roadmaps_created)} roadmaps",
            file=sys.stderr,
        )


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = load_settings()
    if settings.migrate_on_start and not args.no_migrate:
        _prepare(settings, migrate=True, seed=True)
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
        proxy_headers=True,
    )


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
            f"roadmap: created roadmaps {report.roadmaps_created or 'none'}, "
            f"{len(report.programs_created)} programmes"
        )

    try:
        run_against_database(settings, seed)
    except (ValueError, KeyError) as exc:
        fail(f"seed file rejected, nothing written: {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roadmap", description="The Union State roadmap tracker.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, seed an empty database, and serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)
