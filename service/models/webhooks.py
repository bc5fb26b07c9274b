from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import BigIntegerPK, JSONDocument, UTCDateTime


class Webhook(Base):
    """A subscription: where to push the feed's events, which of them, and how far it has got.

    Its `cursor_*` is its position in the gap-free feed (audit.feed): it moves past an event
    only once the receiver has answered 2xx for it, or once the event is seen not to match the
    filters, so nothing is skipped. The signing secret is not stored: it is derived from
    `secret_salt` and the server's ROADMAP_WEBHOOK_SECRET_KEY (webhooks.signing). One
    dispatcher at a time holds a subscription, by a lease (`lease_owner` until `lease_until`)
    taken with a compare-and-set (webhooks.dispatch)."""

    __tablename__ = "webhooks"
    __table_args__ = (
        Index("ix_webhooks_due", "active", "next_attempt_at"),
        cached_reads(CachedReads.NOT_READ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text)
    kinds: Mapped[list[str] | None] = mapped_column(JSONDocument)
    programs: Mapped[list[str] | None] = mapped_column(JSONDocument)
    roadmap: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    # Paused by the dispatcher after failing for ROADMAP_WEBHOOK_FAILING_AFTER_HOURS.
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_salt: Mapped[str] = mapped_column(String(64))
    cursor_txid: Mapped[int] = mapped_column(BigInteger)
    cursor_id: Mapped[int] = mapped_column(BigInteger)
    # Failed attempts in a row at the event after the cursor, since when, and the next try.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One attempt to deliver one event to one subscription, kept for
    ROADMAP_WEBHOOK_DELIVERY_RETENTION_DAYS (webhooks.dispatch purges older ones)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_attempted_at", "attempted_at"),
        cached_reads(CachedReads.NOT_READ),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_cursor: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    delivered: Mapped[bool] = mapped_column(Boolean)
