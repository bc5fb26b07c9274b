from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.rules.workflow import STATES
from service.types import JSONDocument, UTCDateTime

_STATUS_NAMES = ", ".join(f"'{state.name.value}'" for state in STATES)


class Program(Base):
    """A union programme. Its status is written only by a transition, together with the event
    that records it; `version` counts the programme's events, so it equals its last event's seq."""

    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_NAMES})", name="status_known"),
        cached_reads(CachedReads.VERSIONED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    roadmap_id: Mapped[int] = mapped_column(ForeignKey("roadmaps.id"), index=True)
    number: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    title_ru: Mapped[str | None] = mapped_column(String(500))
    title_official: Mapped[bool] = mapped_column(Boolean, default=False)
    sector: Mapped[str | None] = mapped_column(String(100), index=True)
    lead_bodies: Mapped[str | None] = mapped_column(String(1000))
    summary: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    status: Mapped[str] = mapped_column(String(32))  # unindexed: see migration 0012
    status_effective_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
