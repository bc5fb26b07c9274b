"""Idempotency keys: claim, complete, release, purge.

The protocol (after the IETF httpapi Idempotency-Key draft and Stripe):
- first request with a key: claim it (own transaction), do the work, store the response in the
  work's transaction;
- same key, same request, finished: replay the stored response, write nothing;
- same key, different request: 422; same key while the first is still running: 409;
- a claim whose owner died (crash between claim and commit) is taken over after
  `ABANDONED_AFTER`, so a crashed request does not block its retries for ever.
"""

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.clock import utc_now
from service.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from service.models.idempotency import IdempotencyKey

IN_PROGRESS = "in_progress"
COMPLETED = "completed"
ABANDONED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    id: int
    claimed_at: datetime


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def _stored(row: IdempotencyKey) -> StoredResponse:
    return StoredResponse(
        status_code=row.status_code or 200,
        body=(row.response_body or "").encode(),
        headers=dict(row.response_headers or {}),
    )


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], *, scope: str, key: str, fingerprint: str
) -> Claim | StoredResponse:
    """Claim `key` for this request, or return the response a finished request stored."""
    now = utc_now()
    async with sessionmaker() as session:
        row = IdempotencyKey(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state=IN_PROGRESS,
            created_at=now,
            locked_at=now,
        )
        session.add(row)
        try:
            await session.commit()
            return Claim(id=row.id, claimed_at=now)
        except IntegrityError:
            await session.rollback()
        existing = await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        )
        if existing is None:  # purged in between: a rare race; the client may simply retry
            raise IdempotencyKeyInUse("The idempotency key is being recycled; retry.")
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request; use a new key."
            )
        if existing.state == COMPLETED:
            return _stored(existing)
        if existing.locked_at > now - ABANDONED_AFTER:
            raise IdempotencyKeyInUse(
                "A request with this Idempotency-Key is still being processed; retry later.",
                headers={"Retry-After": "1"},
            )
        taken_over = await session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == existing.id,
                IdempotencyKey.locked_at == existing.locked_at,
                IdempotencyKey.state == IN_PROGRESS,
            )
            .values(locked_at=now)
        )
        await session.commit()
        if taken_over.rowcount != 1:  # type: ignore[attr-defined]
            raise IdempotencyKeyInUse("Another retry took this Idempotency-Key over; retry later.")
        return Claim(id=existing.id, claimed_at=now)


async def complete(session: AsyncSession, claim_: Claim, response: StoredResponse) -> None:
    """Store the response in the caller's transaction: it commits with the work or not at all."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_.id)
        .values(
            state=COMPLETED,
            status_code=response.status_code,
            response_body=response.body.decode(),
            response_headers=response.headers,
        )
    )


async def release(sessionmaker: async_sessionmaker[AsyncSession], claim_: Claim) -> None:
    """Forget a claim whose request failed unexpectedly, so a retry runs it afresh."""
    async with sessionmaker() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim_.id, IdempotencyKey.state == IN_PROGRESS
            )
        )
        await session.commit()


async def purge_expired(session: AsyncSession, *, older_than: timedelta) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utc_now() - older_than)
    )
    count: Any = result.rowcount  # type: ignore[attr-defined]
    return int(count)


PURGE_INTERVAL_SECONDS = 600


async def purge_idempotency_keys_periodically(app: Any) -> None:
    """Every worker purges now and then; deleting expired rows twice is harmless."""
    logger = logging.getLogger("service.idempotency")
    ttl = timedelta(hours=app.state.settings.idempotency_ttl_hours)
    while True:
        try:
            async with app.state.sessionmaker() as session:
                purged = await purge_expired(session, older_than=ttl)
                await session.commit()
            if purged:
                logger.info("purged %d expired idempotency keys", purged)
        except Exception:  # the database may be briefly away; try again next round
            logger.warning("purging idempotency keys failed", exc_info=True)
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)
