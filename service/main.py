"""The application factory."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from service import health, metrics
from service.audit.follower import FeedFollower
from service.audit.router import router as events_router
from service.audit.stream import router as stream_router
from service.auth.dependencies import require_reader
from service.auth.router import router as keys_router
from service.board.router import router as board_router
from service.cached_answers import CachedAnswers
from service.caching import NotModified, ViewCache, not_modified_response
from service.compression import IsalGZipMiddleware
from service.config import Settings, get_settings
from service.db import autocommit_engine, create_engine, create_sessionmaker
from service.decisions.router import router as decisions_router
from service.downloads.router import router as downloads_router
from service.edges import HeadAsGet, HeaderLimits, ProblemCORSMiddleware
from service.errors import install_problem_handlers, problem_responses
from service.idempotency.service import purge_idempotency_keys_periodically
from service.limits import BodySizeLimit
from service.logs import RequestLog
from service.milestones.router import all_milestones_router
from service.milestones.router import router as milestones_router
from service.openapi import install_openapi, operation_id
from service.programs.lean_transitions import LeanTransitions
from service.programs.router import router as programs_router
from service.programs.router import workflow_router
from service.query_params import refuse_unexpected_query
from service.roadmaps.router import router as roadmaps_router
from service.schema_setup import head_revision
from service.stats.router import router as stats_router
from service.webhooks.dispatch import Dispatcher
from service.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            lock_timeout_ms=settings.db_lock_timeout_ms,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.autocommit_engine = autocommit_engine(engine)
        app.state.view_cache = ViewCache(max_bytes=settings.view_cache_mb * 2**20)
        app.state.feed_follower = FeedFollower(
            app.state.sessionmaker, buffer_events=settings.stream_buffer_events
        )
        purger = asyncio.create_task(purge_idempotency_keys_periodically(app))
        stop_dispatch = asyncio.Event()
        dispatcher = (
            asyncio.create_task(Dispatcher(app.state.sessionmaker, settings).run(stop_dispatch))
            if settings.webhook_dispatch
            else None
        )
        try:
            yield
        finally:
            if dispatcher is not None:
                stop_dispatch.set()
                await dispatcher  # deliveries in flight end first (each is bounded)
            await app.state.feed_follower.close()
            purger.cancel()
            # Wait for it to end before the engine goes: a purge cut mid-statement must not
            # be left holding a connection (or, on SQLite, a driver thread) past the dispose.
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await engine.dispose()

    app = FastAPI(
        title="Union State roadmap tracker",
        version="1.0.0",
        summary="Where each union programme of the Russia–Belarus Union State stands, "
        "and how it got there, with a source for every step.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_unexpected_query)],
        generate_unique_id_function=operation_id,
        docs_url=None,  # served from the package by install_openapi, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.head_revision = head_revision()
    install_problem_handlers(app)
    app.add_exception_handler(NotModified, not_modified_response)
    install_openapi(app)
    # Innermost: a cached answer goes out through every other layer (service.cached_answers).
    app.add_middleware(CachedAnswers)
    # Beside it, the common transition on PostgreSQL (service.programs.lean_transitions).
    app.add_middleware(LeanTransitions, path_prefix=f"{API_PREFIX}/programs/")
    app.add_middleware(BodySizeLimit)
    # Leaves text/event-stream alone, so live events are not held back (service.compression).
    app.add_middleware(IsalGZipMiddleware, minimum_size=1024)
    if settings.cors_origin_list:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "Last-Event-ID",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Idempotent-Replayed",
                "X-Request-ID",
                "Retry-After",
            ],
        )
    app.add_middleware(HeadAsGet)
    app.add_middleware(HeaderLimits)
    app.add_middleware(RequestLog)  # outermost: its id, timing and metrics cover everything
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Every API route reads at least as a reader; writes add their own role on top.
    readers = [Depends(require_reader)]
    for router in (
        programs_router,
        decisions_router,
        milestones_router,
        all_milestones_router,
        events_router,
        stream_router,
        downloads_router,
        roadmaps_router,
        stats_router,
        workflow_router,
    ):
        app.include_router(
            router, prefix=API_PREFIX, dependencies=readers, responses=problem_responses(401, 403)
        )
    app.include_router(keys_router, prefix=API_PREFIX)
    app.include_router(webhooks_router, prefix=API_PREFIX)
    # The status board: pages for people, its stylesheet and script from the package.
    app.include_router(board_router)
    app.mount(
        "/board-assets",
        StaticFiles(directory=str(files("service.board") / "static")),
        name="board-assets",
    )
    return app
