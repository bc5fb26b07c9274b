from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    FetchedValue,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import BigIntegerPK, JSONDocument, UTCDateTime

# The kinds of event that set a programme's status (audit.kinds.STATUS_EVENT_KINDS).
STATUS_KINDS_SQL = "kind IN ('created', 'status_changed', 'corrected')"


class Event(Base):
    """One entry of a programme's history: append-only.

    Written in the same transaction as the change it records. The database refuses UPDATE,
    DELETE and TRUNCATE on this table (triggers in the initial migration), and `hash` chains each
    event to the previous one of the same programme (see service.audit.chain), so an edit made
    behind the service's back is found by `roadmap verify`.

    `txid` is the writing transaction's id on PostgreSQL (0 on SQLite, where writers are
    serialised anyway); the change feed orders by (txid, id), see service.audit.feed.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("program_id", "seq", name="uq_events_program_seq"),
        Index("ix_events_feed", "txid", "id"),
        Index("ix_events_kind", "kind"),
        # As-of reads and timelines: one seek per programme and point in time (programs.asof).
        Index(
            "ix_events_status_asof",
            "program_id",
            "effective_date",
            "seq",
            postgresql_where=text(STATUS_KINDS_SQL),
            sqlite_where=text(STATUS_KINDS_SQL),
        ),
        # Whether a programme has a correction, which as-of reads must then take into account.
        Index(
            "ix_events_corrections",
            "program_id",
            postgresql_where=text("kind = 'corrected'"),
            sqlite_where=text("kind = 'corrected'"),
        ),
        Index("ix_events_decision", "decision"),
        # each event bumps its programme's version
        cached_reads(CachedReads.COVERED),
    )

    id: Mapped[int] = mapped_column(BigIntegerPK, primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    effective_date: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    sources: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # The decision that wrote this event (service.decisions); covered by the hash when set.
    decision: Mapped[str | None] = mapped_column(ForeignKey("decisions.code"))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class EventText(Base):
    """An event as the feed and the exports show it on PostgreSQL: `body` holds the members of
    its JSON object, `cursor` its feed cursor, `csv` its CSV line (audit.rendered reads them).

    Written by the database, never by the service: a trigger writes it when the event is
    appended, and rewrites it when the event is attributed to a decision afterwards (migration
    0010, which holds the SQL). Empty on SQLite, where the text is built from the models."""

    __tablename__ = "event_texts"
    __table_args__ = (
        # The feed's pages and exports are validated by the feed's end, not by cached views.
        cached_reads(CachedReads.NOT_READ),
    )

    event_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.id"), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    cursor: Mapped[str] = mapped_column(String(64))
    csv: Mapped[str] = mapped_column(Text)
