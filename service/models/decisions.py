from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import JSONDocument, UTCDateTime


class Decision(Base):
    """An act that moves many programmes at once: a decree, a resolution, a joint statement.

    Recorded with the events it wrote, in one transaction (service.decisions); each of those
    events names it in its `decision` column, which its hash covers. Append-only, like events
    (triggers in migration 0007)."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_date", "date", "id"),
        cached_reads(CachedReads.APPENDED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    title_ru: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[str | None] = mapped_column(String(64))
    date: Mapped[date] = mapped_column(Date)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    sources: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DecisionAttribution(Base):
    """An event recorded before decisions existed, attributed afterwards to the act that made
    it (the bundled history's package-wide steps: service.seed). Its hash stays as recorded,
    so the attribution lives here, appended, rather than in the event; reads show it as the
    event's `decision` all the same (audit.service.events_with_codes). Append-only."""

    __tablename__ = "decision_attributions"
    __table_args__ = (cached_reads(CachedReads.APPENDED),)

    event_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("events.id"),
        primary_key=True,
        autoincrement=False,
    )
    decision: Mapped[str] = mapped_column(ForeignKey("decisions.code"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
