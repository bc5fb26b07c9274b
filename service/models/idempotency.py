from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import JSONDocument, UTCDateTime


class IdempotencyKey(Base):
    """A client's Idempotency-Key and the response it got, so a retry gets the same answer.

    Claimed (`in_progress`) in its own short transaction before the work starts; completed in
    the same transaction as the work, so a stored response exists exactly when its effect does.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
        cached_reads(CachedReads.NOT_READ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime)
