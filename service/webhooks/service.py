"""Subscriptions: created, read, changed, removed, re-keyed and replayed. Delivering them is
dispatch.py's."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.feed import decode_feed_cursor, encode_feed_cursor, feed_end
from service.clock import utc_now
from service.config import Settings
from service.errors import InvalidInput, NotFound, WebhookKeyUnset
from service.filters import require_known
from service.models.events import Event
from service.models.programs import Program
from service.models.webhooks import Webhook, WebhookDelivery
from service.pagination import decode_cursor, encode_cursor
from service.webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    state_of,
)
from service.webhooks.signing import new_salt, secret_for
from service.webhooks.targets import TargetRefused, parse_target


def webhook_read(webhook: Webhook) -> WebhookRead:
    return WebhookRead(
        id=webhook.id,
        url=webhook.url,
        description=webhook.description,
        kinds=webhook.kinds,
        programs=webhook.programs,
        roadmap=webhook.roadmap,
        active=webhook.active,
        state=state_of(webhook.active, webhook.failing),
        cursor=encode_feed_cursor((webhook.cursor_txid, webhook.cursor_id)),
        failures=webhook.failures,
        failing_since=webhook.failing_since,
        next_attempt_at=webhook.next_attempt_at,
        last_error=webhook.last_error,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def delivery_read(delivery: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead.model_validate(delivery)


def secret_of(webhook: Webhook, settings: Settings) -> str:
    return secret_for(settings.webhook_secret_key.get_secret_value(), webhook.secret_salt)


def _check_url(url: str, settings: Settings) -> None:
    try:
        parse_target(url, allow_private=settings.webhook_allow_private)
    except TargetRefused as refused:
        raise InvalidInput(
            f"url: {refused}",
            errors=[{"loc": ["body", "url"], "msg": str(refused), "type": "webhook_target"}],
        ) from None


async def _check_filters(
    session: AsyncSession, programs: list[str] | None, roadmap: str | None
) -> None:
    """A filter that names nothing would deliver nothing, silently: 422, as for reads."""
    await require_known(session, roadmap=roadmap)
    if programs:
        known = set(await session.scalars(select(Program.code).where(Program.code.in_(programs))))
        unknown = sorted(set(programs) - known)
        if unknown:
            raise InvalidInput(
                f"programs: there is no programme with code {', '.join(map(repr, unknown))}."
            )


def _bad_cursor(field: str, reason: str) -> InvalidInput:
    return InvalidInput(
        f"{field}: {reason}", errors=[{"loc": ["body", field], "msg": reason, "type": "cursor"}]
    )


def _cursor(cursor: str, field: str) -> tuple[int, int]:
    try:
        return decode_feed_cursor(cursor)
    except InvalidInput as refused:
        raise _bad_cursor(field, refused.detail) from None


def _require_key(settings: Settings) -> None:
    if settings.env == "production" and not settings.webhook_key_is_set:
        raise WebhookKeyUnset(
            "Webhook secrets are derived from ROADMAP_WEBHOOK_SECRET_KEY, which is not set: "
            "the operator must set it (a long random value) before subscriptions are made."
        )


async def create_webhook(
    session: AsyncSession, data: WebhookCreate, settings: Settings
) -> tuple[Webhook, str]:
    _require_key(settings)
    _check_url(data.url, settings)
    await _check_filters(session, data.programs, data.roadmap)
    end = await feed_end(session)
    start = _cursor(data.after, "after") if data.after else end
    if start > end:
        # A cursor from the future would skip, unseen, every event until the feed reached it.
        raise _bad_cursor("after", "that cursor is past the end of the feed: it was not issued.")
    now = utc_now()
    webhook = Webhook(
        url=data.url,
        description=data.description,
        kinds=[kind.value for kind in data.kinds] if data.kinds else None,
        programs=data.programs,
        roadmap=data.roadmap,
        active=True,
        failing=False,
        secret_salt=new_salt(),
        cursor_txid=start[0],
        cursor_id=start[1],
        failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    await session.flush()
    return webhook, secret_of(webhook, settings)


async def list_webhooks(session: AsyncSession) -> list[Webhook]:
    return list(await session.scalars(select(Webhook).order_by(Webhook.id)))


async def get_webhook(session: AsyncSession, webhook_id: int, *, lock: bool = False) -> Webhook:
    query = select(Webhook).where(Webhook.id == webhook_id)
    if lock:
        query = query.with_for_update()
    webhook = await session.scalar(query)
    if webhook is None:
        raise NotFound(f"There is no webhook with id {webhook_id}.")
    return webhook


def _take_back(webhook: Webhook) -> None:
    """Take the subscription from whichever dispatcher holds it: its next guarded update fails
    and it stops, so it cannot carry on with what this change replaces (the cursor, the URL,
    the secret). The lease's end stays as a fence: no other dispatcher claims it before then,
    while the old holder may still be sending one last event (at most 10 s), so two never send
    to one subscription at once."""
    webhook.lease_owner = None


def _resume(webhook: Webhook) -> None:
    """Deliver again at once, from where it stopped, with a clean failure count."""
    webhook.active = True
    webhook.failing = False
    webhook.failures = 0
    webhook.failing_since = None
    webhook.next_attempt_at = None


async def update_webhook(
    session: AsyncSession, webhook_id: int, data: WebhookUpdate, settings: Settings
) -> Webhook:
    webhook = await get_webhook(session, webhook_id, lock=True)
    given = data.model_fields_set
    if "url" in given:
        if data.url is None:
            raise InvalidInput("url cannot be null.")
        _check_url(data.url, settings)
    changes: dict[str, Any] = {name: getattr(data, name) for name in given if name != "active"}
    if "kinds" in changes and changes["kinds"] is not None:
        changes["kinds"] = [kind.value for kind in changes["kinds"]]
    await _check_filters(session, changes.get("programs"), changes.get("roadmap"))
    for name, value in changes.items():
        setattr(webhook, name, value)
    if data.active is True:
        _resume(webhook)
    elif data.active is False:
        webhook.active = False
        webhook.failing = False
    _take_back(webhook)
    webhook.updated_at = utc_now()
    await session.flush()
    return webhook


async def delete_webhook(session: AsyncSession, webhook_id: int) -> None:
    webhook = await get_webhook(session, webhook_id, lock=True)
    await session.delete(webhook)  # and its delivery log, by ON DELETE CASCADE
    await session.flush()


async def rotate_secret(
    session: AsyncSession, webhook_id: int, settings: Settings
) -> tuple[Webhook, str]:
    _require_key(settings)
    webhook = await get_webhook(session, webhook_id, lock=True)
    webhook.secret_salt = new_salt()
    _take_back(webhook)
    webhook.updated_at = utc_now()
    await session.flush()
    return webhook, secret_of(webhook, settings)


async def redeliver(session: AsyncSession, webhook_id: int, event_cursor: str) -> Webhook:
    """Move the subscription back to just before the event at `event_cursor`: it and every
    matching event after it are delivered again, in order (at once, if it was paused)."""
    txid, event_id = _cursor(event_cursor, "event")
    found = await session.scalar(select(Event.id).where(Event.id == event_id, Event.txid == txid))
    if found is None:
        # Moving the cursor anywhere else could skip events unseen.
        raise _bad_cursor("event", "that cursor names no event (use an event_cursor from the log).")
    webhook = await get_webhook(session, webhook_id, lock=True)
    if (txid, event_id) > (webhook.cursor_txid, webhook.cursor_id):
        # Not delivered yet: moving the cursor there would skip what comes before it unseen.
        raise _bad_cursor("event", "that event has not been delivered yet; it will be in turn.")
    # (txid, id - 1) comes right before (txid, id): the feed orders by the pair.
    webhook.cursor_txid, webhook.cursor_id = txid, event_id - 1
    _resume(webhook)
    _take_back(webhook)
    webhook.updated_at = utc_now()
    await session.flush()
    return webhook


async def list_deliveries(
    session: AsyncSession, webhook_id: int, *, before: str | None, limit: int
) -> tuple[list[WebhookDelivery], str | None]:
    """Newest first; `before` is the previous page's cursor."""
    await get_webhook(session, webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < decode_cursor(before, arity=1)[0])
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None
