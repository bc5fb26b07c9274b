from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import JSONDocument, UTCDateTime


class Milestone(Base):
    """A measure of a programme with a deadline. Added and changed only together with a
    `milestone_added` / `milestone_updated` event in the programme's history."""

    __tablename__ = "milestones"
    # Each change comes with an event, which bumps its programme's version.
    __table_args__ = (cached_reads(CachedReads.COVERED),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    due_date: Mapped[date | None] = mapped_column(Date)
    done_date: Mapped[date | None] = mapped_column(Date)
    # The date of the act that set the milestone: it exists, in an as-of view, from this day.
    set_on: Mapped[date] = mapped_column(Date)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    sources: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
