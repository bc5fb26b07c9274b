from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import UTCDateTime


class ApiKey(Base):
    """An API key. The secret itself is never stored: only its SHA-256 (see auth.tokens).

    Revoked keys stay, so a name once used is never given to someone else: history names keys.
    """

    __tablename__ = "api_keys"
    __table_args__ = (cached_reads(CachedReads.NOT_READ),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
