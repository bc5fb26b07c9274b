"""The harness's databases: creating and dropping them, bulk-loading events, reading positions."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]

T = TypeVar("T")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Programmes created only to carry the bulk-loaded history (never transitioned by the load).
BULK_PREFIX = "bulkev_"
# Programmes the transition load toggles between draft and coordinated.
BENCH_PREFIX = "bench_"


def _quoted(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a safe database name: {name!r}")
    return f'"{name}"'


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server on loopback; `base` is postgresql://USER@HOST:PORT."""

    base: str

    def dsn(self, database: str) -> str:
        return f"{self.base}/{database}"

    def _run(self, database: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def go() -> T:
            connection = await asyncpg.connect(self.dsn(database), timeout=10)
            try:
                return await work(connection)
            finally:
                await connection.close()

        return asyncio.run(go())

    def execute(self, database: str, sql: str, *args: Any) -> None:
        async def work(connection: asyncpg.Connection) -> None:
            await connection.execute(sql, *args)

        self._run(database, work)

    def fetchval(self, database: str, sql: str, *args: Any) -> Any:
        async def work(connection: asyncpg.Connection) -> Any:
            return await connection.fetchval(sql, *args)

        return self._run(database, work)

    def fetch(self, database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await connection.fetch(sql, *args))

        return self._run(database, work)

    def version(self) -> str:
        text = str(self.fetchval("postgres", "SELECT version()"))
        return text.split(" on ")[0]

    def create_database(self, name: str) -> None:
        self.execute("postgres", f"CREATE DATABASE {_quoted(name)}")

    def drop_database(self, name: str) -> None:
        self.execute("postgres", f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")

    def table_exists(self, database: str, table: str) -> bool:
        return bool(self.fetchval(database, "SELECT to_regclass($1) IS NOT NULL", table))


# One INSERT … SELECT per chunk. Row g (1..n) of a load goes to programme (g-1) mod P with the
# next seq of that programme, so the feed interleaves programmes as real traffic would. Values:
# statuses alternate draft/coordinated (seq even: draft -> coordinated); effective dates spread
# over 2021-2024 so a quarterly timeline has something in every quarter; hashes are fake 64-hex
# strings (`roadmap verify` fails on such a database, which does not matter for a bench DB).
# txid: the feed only shows events whose txid is below the snapshot's xmin, so the loaded rows
# get txids spread over [lowest txid present, xmin) instead of the loader's own transaction id.
_INSERT_EVENTS = """
WITH r AS (
  SELECT g,
         ($1::int[])[(g - 1) % cardinality($1::int[]) + 1] AS program_id,
         ($2::int[])[(g - 1) % cardinality($1::int[]) + 1]
           + (g - 1) / cardinality($1::int[]) + 1 AS seq,
         ((g - 1)::bigint * 1460 / $5::bigint)::int AS day
  FROM generate_series($3::int, $4::int) AS g
)
INSERT INTO events (txid, program_id, seq, kind, from_status, to_status, effective_date,
                    recorded_at, actor, on_behalf_of, note, source_url, sources, changes,
                    prev_hash, hash)
SELECT $6::bigint + (g - 1)::bigint * $7::bigint / $5::bigint,
       program_id, seq, 'status_changed',
       CASE WHEN seq % 2 = 0 THEN 'draft' ELSE 'coordinated' END,
       CASE WHEN seq % 2 = 0 THEN 'coordinated' ELSE 'draft' END,
       date '2021-01-01' + day,
       ((date '2021-01-01' + day)::timestamp + interval '12 hours') AT TIME ZONE 'UTC',
       'bench-loader', NULL, NULL, NULL, '[]'::jsonb, NULL,
       md5(program_id || ':' || (seq - 1)) || md5((seq - 1) || ':' || program_id),
       md5(program_id || ':' || seq) || md5(seq || ':' || program_id)
FROM r
ORDER BY g
"""

# Keep each bulk programme's version equal to its newest seq, as the service maintains it.
_SYNC_BULK_PROGRAMMES = """
UPDATE programs AS p
SET version = (SELECT max(e.seq) FROM events AS e WHERE e.program_id = p.id),
    status = CASE WHEN (SELECT max(e.seq) FROM events AS e WHERE e.program_id = p.id) % 2 = 0
                  THEN 'coordinated' ELSE 'draft' END
WHERE p.code LIKE 'bulkev\\_%'
"""


@dataclass(frozen=True)
class LoadReport:
    added: int
    total: int
    seconds: float


def load_events(
    pg: Postgres,
    database: str,
    *,
    target_total: int,
    chunk: int = 100_000,
    progress: Callable[[str], None] = print,
) -> LoadReport:
    """Append fake status changes of the bulk programmes until `events` holds `target_total`."""

    async def work(connection: asyncpg.Connection) -> LoadReport:
        started = time.monotonic()
        await connection.execute("SET synchronous_commit = off")
        before = int(await connection.fetchval("SELECT count(*) FROM events"))
        wanted = target_total - before
        if wanted <= 0:
            return LoadReport(added=0, total=before, seconds=0.0)
        programmes = await connection.fetch(
            "SELECT id, version FROM programs WHERE code LIKE 'bulkev\\_%' ORDER BY id"
        )
        if not programmes:
            raise RuntimeError("no bulk programmes to carry the events")
        ids = [row["id"] for row in programmes]
        versions = [row["version"] for row in programmes]
        lowest = int(await connection.fetchval("SELECT coalesce(min(txid), 3) FROM events"))
        xmin = int(
            await connection.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            )
        )
        span = max(xmin - lowest, 1)
        for first in range(1, wanted + 1, chunk):
            last = min(first + chunk - 1, wanted)
            await connection.execute(
                _INSERT_EVENTS, ids, versions, first, last, wanted, lowest, span
            )
            progress(f"  events: {before + last:,} / {target_total:,}")
        await connection.execute(_SYNC_BULK_PROGRAMMES)
        await connection.execute("VACUUM ANALYZE events")
        await connection.execute("ANALYZE programs")
        total = int(await connection.fetchval("SELECT count(*) FROM events"))
        return LoadReport(added=total - before, total=total, seconds=time.monotonic() - started)

    return pg._run(database, work)


def feed_position_from_end(pg: Postgres, database: str, back: int) -> tuple[int, int]:
    """The (txid, id) of the event `back` places before the last one, in feed order."""
    row = pg.fetch(
        database,
        "SELECT txid, id FROM events ORDER BY txid DESC, id DESC OFFSET $1 LIMIT 1",
        back,
    )[0]
    return int(row["txid"]), int(row["id"])


def longest_history(pg: Postgres, database: str) -> tuple[str, int]:
    """The programme with the most events, and its newest seq."""
    row = pg.fetch(
        database,
        "SELECT code, version FROM programs WHERE code LIKE 'bulkev\\_%' "
        "ORDER BY version DESC, id LIMIT 1",
    )[0]
    return str(row["code"]), int(row["version"])


def key_id_of(pg: Postgres, database: str, name: str) -> str:
    return str(pg.fetchval(database, "SELECT key_id FROM api_keys WHERE name = $1", name))


def secret_hash_of(pg: Postgres, database: str, name: str) -> str:
    """The stored hash of the key's secret, which the lean transition's lookup matches."""
    return str(pg.fetchval(database, "SELECT secret_hash FROM api_keys WHERE name = $1", name))


def count_events(pg: Postgres, database: str) -> int:
    return int(pg.fetchval(database, "SELECT count(*) FROM events"))
