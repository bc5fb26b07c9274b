"""The reads of a streamed answer (db.page_session) survive the stream's cancellation: a client
going away mid-statement must not make SQLAlchemy throw the connection away, which on SQLite
abandoned the aiosqlite close half-way ("Task was destroyed but it is pending!" in the log)."""

import asyncio
from typing import Any

import anyio
from sqlalchemy import event, text

from service.db import create_engine, create_sessionmaker, page_session

# Long enough to be cancelled while it runs, on SQLite and PostgreSQL alike.
SLOW_COUNT = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
    "SELECT count(*) FROM c"
)


async def test_a_read_cancelled_mid_statement_ends_and_keeps_its_connection(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    invalidated: list[Any] = []
    event.listen(engine.sync_engine, "invalidate", lambda *args: invalidated.append(args))
    started = anyio.Event()
    # The loop is the session's: tasks other tests left running in it (sse-starlette's
    # shutdown watcher, one per loop) are not this read's.
    running_before = asyncio.all_tasks()
    counted: list[int] = []

    async def stream() -> None:
        async with page_session(create_sessionmaker(engine)) as session:
            started.set()
            counted.append((await session.execute(SLOW_COUNT)).scalar_one())
        await anyio.sleep(60)  # the stream's next step, where the cancellation lands

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as streams:
                streams.start_soon(stream)
                await started.wait()
                await anyio.sleep(0.05)  # the statement is running
                streams.cancel_scope.cancel()  # as when the client goes away
    finally:
        # A driver's close left pending for ever: the server's log says "Task was destroyed
        # but it is pending!" when it is collected. Cancelled here, or the loop never closes.
        left_pending = [
            task
            for task in asyncio.all_tasks() - running_before
            if task is not asyncio.current_task()
        ]
        for task in left_pending:
            task.cancel()
        await engine.dispose()
    assert counted == [2_000_000]
    assert invalidated == []
    assert left_pending == []
