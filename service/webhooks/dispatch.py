"""The dispatcher: follows the feed for every active subscription and delivers what matches.

At-least-once and in feed order per subscription: a subscription's cursor moves past an event
only after a 2xx for it (or once the event is seen not to match), and the next event is not
tried before. A failed attempt is retried with backoff (retry.py) while later events wait;
failing for ROADMAP_WEBHOOK_FAILING_AFTER_HOURS pauses the subscription as `failing`.

Every worker of every replica runs one (and `roadmap deliver` runs one on its own). Each
subscription is held by one dispatcher at a time through a lease in its row, taken by a
compare-and-set UPDATE that both databases make atomic (PostgreSQL re-checks the condition
after waiting for the row lock; SQLite has one writer at a time). The holder renews it with
every event; a dispatcher that dies stops renewing, and another takes over once it expires,
from the cursor, which moved only past delivered events: nothing is lost, and an event cut off
mid-delivery is sent again with the same webhook-id."""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from prometheus_client import Counter
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.feed import encode_feed_cursor, feed_end, read_feed
from service.audit.service import EventRow, event_json
from service.clock import utc_now
from service.config import Settings
from service.models.events import Event
from service.models.programs import Program
from service.models.roadmaps import Roadmap
from service.models.webhooks import Webhook, WebhookDelivery
from service.webhooks.delivery import new_client, post_event
from service.webhooks.retry import gives_up, retry_delay
from service.webhooks.service import secret_of
from service.webhooks.signing import message_id, signature

log = logging.getLogger("roadmap.webhooks")

LEASE = timedelta(seconds=30)  # > the longest delivery (10 s), renewed after every event
IDLE_POLL_SECONDS = 1.0
BATCH = 100
MAX_CONCURRENT = 8  # subscriptions one dispatcher delivers at once
PURGE_EVERY = timedelta(minutes=5)

ANY_ACTIVE = select(Webhook.id).where(Webhook.active.is_(True)).limit(1)

DELIVERIES = Counter(
    "roadmap_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered: a 2xx; failed: anything else)",
    ["outcome"],
)


def wanted(webhook: Webhook, row: EventRow, roadmap_programs: set[str] | None) -> bool:
    """Whether the subscription's filters take the event."""
    if webhook.kinds is not None and row.event.kind not in webhook.kinds:
        return False
    if webhook.programs is not None and row.program not in webhook.programs:
        return False
    return roadmap_programs is None or row.program in roadmap_programs


def dispatcher_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.client = client or new_client()
        self.name = dispatcher_name()
        self.delivering: dict[int, asyncio.Task[None]] = {}
        self.purged_at: datetime | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping` is set; a database outage is waited out, not fatal."""
        if not self.may_sign:
            log.error(
                "ROADMAP_WEBHOOK_SECRET_KEY is not set: webhooks are not delivered until it is"
            )
        try:
            while not stopping.is_set():
                try:
                    started = await self.tick()
                except Exception:
                    log.warning("webhook dispatch failed; retrying", exc_info=True)
                    started = 0
                if not started:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), IDLE_POLL_SECONDS)
                else:
                    await asyncio.sleep(0.05)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Let deliveries in flight finish (each is bounded), then close the client."""
        if self.delivering:
            await asyncio.wait(list(self.delivering.values()), timeout=15)
        left = list(self.delivering.values())
        for task in left:
            task.cancel()
        # Wait for the cancelled ones too: none may still use a session when the engine goes.
        await asyncio.gather(*left, return_exceptions=True)
        await self.client.aclose()

    @property
    def may_sign(self) -> bool:
        """Not in production with the development key: a signature anyone can forge from the
        source is worse than a delivery that waits (nothing is lost; the lag metric grows)."""
        return self.settings.env != "production" or self.settings.webhook_key_is_set

    async def tick(self) -> int:
        """Claim due subscriptions and start delivering them; how many were started."""
        if not self.may_sign:
            return 0
        now = utc_now()
        await self._purge(now)
        if len(self.delivering) >= MAX_CONCURRENT:
            return 0
        async with self.sessions() as session:
            if await session.scalar(ANY_ACTIVE) is None:  # the usual idle tick: one lookup
                return 0
            end = await feed_end(session)
            due = list(
                await session.scalars(
                    select(Webhook.id)
                    .where(
                        Webhook.active.is_(True),
                        (Webhook.next_attempt_at.is_(None)) | (Webhook.next_attempt_at <= now),
                        (Webhook.lease_until.is_(None)) | (Webhook.lease_until < now),
                        # Only those with something to send: subscriptions that are caught up
                        # must not crowd the others out of the limit.
                        tuple_(Webhook.cursor_txid, Webhook.cursor_id) < tuple_(*end),
                    )
                    .order_by(Webhook.id)
                    .limit(MAX_CONCURRENT * 2)
                )
            )
        started = 0
        for webhook_id in due:
            if webhook_id in self.delivering:
                continue
            if len(self.delivering) >= MAX_CONCURRENT or not await self._claim(webhook_id, now):
                continue
            task = asyncio.create_task(self._deliver(webhook_id))
            self.delivering[webhook_id] = task
            task.add_done_callback(partial(self._done, webhook_id))
            started += 1
        return started

    def _done(self, webhook_id: int, _task: "asyncio.Task[None]") -> None:
        self.delivering.pop(webhook_id, None)

    async def _claim(self, webhook_id: int, now: datetime) -> bool:
        async with self.sessions() as session:
            claimed = await session.execute(
                update(Webhook)
                .where(
                    Webhook.id == webhook_id,
                    Webhook.active.is_(True),
                    (Webhook.lease_until.is_(None)) | (Webhook.lease_until < now),
                    # Again here: another dispatcher may have failed an attempt meanwhile.
                    (Webhook.next_attempt_at.is_(None)) | (Webhook.next_attempt_at <= now),
                )
                .values(lease_owner=self.name, lease_until=now + LEASE)
            )
            await session.commit()
            return _changed_one(claimed)

    async def _deliver(self, webhook_id: int) -> None:
        try:
            while await self._deliver_batch(webhook_id):
                pass
        except Exception:
            log.warning("webhook %s: delivery stopped", webhook_id, exc_info=True)

    async def _deliver_batch(self, webhook_id: int) -> bool:
        """Deliver the next events; whether to go on."""
        async with self.sessions() as session:
            webhook = await session.get(Webhook, webhook_id)
            if webhook is None or not webhook.active or webhook.lease_owner != self.name:
                return False
            rows, _ = await read_feed(
                session, after=(webhook.cursor_txid, webhook.cursor_id), limit=BATCH
            )
            roadmap_programs = await _programs_of(session, webhook.roadmap)
            secret = secret_of(webhook, self.settings)
            session.expunge(webhook)
        if not rows:
            await self._release(webhook_id)
            return False
        # A delivered event moves the cursor past it and past the unmatched ones before it; a
        # failed one leaves the cursor where it was, and the retry reads them again.
        for row in rows:
            if wanted(webhook, row, roadmap_programs) and not await self._send(
                webhook, row, secret
            ):
                return False
        last = rows[-1].event
        return await self._advance(webhook_id, (last.txid, last.id))

    async def _send(self, webhook: Webhook, row: EventRow, secret: str) -> bool:
        """One attempt at one event; whether it was delivered (and the lease still held)."""
        event = row.event
        message = message_id(event.id)
        sent_at = utc_now()
        body = event_json(row)
        headers = {
            "webhook-id": message,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature(secret, message, sent_at, body),
        }
        outcome = await post_event(
            self.client,
            webhook.url,
            body,
            headers,
            allow_private=self.settings.webhook_allow_private,
        )
        DELIVERIES.labels("delivered" if outcome.delivered else "failed").inc()
        position = (event.txid, event.id)
        now = utc_now()
        async with self.sessions() as session:
            session.add(
                WebhookDelivery(
                    webhook_id=webhook.id,
                    event_id=event.id,
                    event_cursor=encode_feed_cursor(position),
                    message_id=message,
                    attempt=webhook.failures + 1,
                    attempted_at=sent_at,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    delivered=outcome.delivered,
                )
            )
            held = (
                Webhook.id == webhook.id,
                Webhook.lease_owner == self.name,
                Webhook.active.is_(True),
            )
            if outcome.delivered:
                values: dict[str, object] = {
                    "cursor_txid": position[0],
                    "cursor_id": position[1],
                    "failures": 0,
                    "failing_since": None,
                    "next_attempt_at": None,
                    "last_error": None,
                    "lease_until": now + LEASE,
                }
            else:
                failures = webhook.failures + 1
                since = webhook.failing_since or sent_at
                give_up = gives_up(
                    since,
                    now,
                    after=timedelta(hours=self.settings.webhook_failing_after_hours),
                )
                wait = retry_delay(failures, max_seconds=self.settings.webhook_retry_max_seconds)
                values = {
                    "failures": failures,
                    "failing_since": since,
                    "next_attempt_at": now + wait,
                    "last_error": outcome.error,
                    "lease_owner": None,
                    "lease_until": None,
                }
                log.info(
                    "webhook %s: event %s not delivered (%s); attempt %s, next in %s",
                    webhook.id,
                    event.id,
                    outcome.error,
                    failures,
                    wait,
                )
                if give_up:
                    values |= {"active": False, "failing": True}
                    log.warning("webhook %s: failing since %s, paused", webhook.id, since)
            try:
                changed = await session.execute(update(Webhook).where(*held).values(**values))
                await session.commit()
            except IntegrityError:  # the subscription was deleted meanwhile: nothing to log
                await session.rollback()
                return False
        if outcome.delivered:
            webhook.failures, webhook.failing_since = 0, None
        return outcome.delivered and _changed_one(changed)

    async def _advance(self, webhook_id: int, position: tuple[int, int]) -> bool:
        """Move past events that did not match, renewing the lease; whether it is still held."""
        async with self.sessions() as session:
            changed = await session.execute(
                update(Webhook)
                .where(
                    Webhook.id == webhook_id,
                    Webhook.lease_owner == self.name,
                    Webhook.active.is_(True),
                )
                .values(
                    cursor_txid=position[0],
                    cursor_id=position[1],
                    lease_until=utc_now() + LEASE,
                )
            )
            await session.commit()
            return _changed_one(changed)

    async def _release(self, webhook_id: int) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(Webhook)
                .where(Webhook.id == webhook_id, Webhook.lease_owner == self.name)
                .values(lease_owner=None, lease_until=None)
            )
            await session.commit()

    async def _purge(self, now: datetime) -> None:
        """Drop delivery log entries past their retention, every few minutes."""
        if self.purged_at is not None and now - self.purged_at < PURGE_EVERY:
            return
        self.purged_at = now
        cutoff = now - timedelta(days=self.settings.webhook_delivery_retention_days)
        async with self.sessions() as session:
            await session.execute(
                delete(WebhookDelivery).where(WebhookDelivery.attempted_at < cutoff)
            )
            await session.commit()


def _changed_one(result: Any) -> bool:
    """Whether an UPDATE guarded by the lease changed its row (the lease was still held)."""
    return bool(result.rowcount == 1)


async def _programs_of(session: AsyncSession, roadmap: str | None) -> set[str] | None:
    if roadmap is None:
        return None
    codes = await session.scalars(
        select(Program.code)
        .join(Roadmap, Roadmap.id == Program.roadmap_id)
        .where(Roadmap.code == roadmap)
    )
    return set(codes)


async def lag_by_webhook(session: AsyncSession) -> Sequence[tuple[int, int]]:
    """Events in the feed after each subscription's cursor (matching or not): how far behind
    its deliveries are; paused and failing ones included, as their lag is what an alert is
    for."""
    behind = (
        select(func.count())
        .select_from(Event)
        .where(
            tuple_(Event.txid, Event.id)  # compared as a pair, like the feed
            > tuple_(Webhook.cursor_txid, Webhook.cursor_id)
        )
        .correlate(Webhook)
        .scalar_subquery()
    )
    rows = await session.execute(select(Webhook.id, behind).order_by(Webhook.id))
    return [(webhook_id, int(count)) for webhook_id, count in rows]
